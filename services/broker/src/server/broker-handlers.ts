import { BrokerService } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField } from "@stratum/validation";
import type { BindingManager } from "../domain/binding-manager";
import type { Catalog } from "../domain/catalog";
import type { InstanceManager } from "../domain/instance-manager";
import { tenantOf } from "../domain/tenancy";
import type { InstanceStore } from "../store/instance-store";
import { bindingToProto, catalogToProto, instanceToProto, operationToProto, STATE_FROM_PROTO } from "./convert";

/**
 * BrokerService, for the tenant of the caller's bearer token (the kit's auth interceptor found
 * it). Served where the call lands: no method routes to an owner, because the instance's unique
 * index, not a replica, decides between concurrent requests (seed 003), and the work itself runs
 * as long jobs on the owner of each instance.
 */
export function brokerApi(catalog: Catalog, instances: InstanceManager, bindings: BindingManager, store: InstanceStore): ServiceApi {
  return serviceApi(
    BrokerService,
    {
      getCatalog() {
        return { services: catalog.services.map(catalogToProto) };
      },
      async provisionInstance(req, ctx) {
        const { row, created } = await instances.provision(tenantOf(ctx), { instanceId: req.instanceId, serviceId: req.serviceId, planId: req.planId, parameters: req.parameters ?? {} });
        return { instance: instanceToProto(row), created };
      },
      async getInstance(req, ctx) {
        return { instance: instanceToProto(await instances.get(tenantOf(ctx), req.instanceId)) };
      },
      async listInstances(req, ctx) {
        const tenant = tenantOf(ctx);
        const state = STATE_FROM_PROTO.get(req.state);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ tenant, ...(state ? { state } : {}), afterSeq: decodePageToken(req.pageToken, filters(req)), limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { instances: page.map(instanceToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, filters(req)) : "" };
      },
      async updateInstance(req, ctx) {
        const { row, started } = await instances.update(tenantOf(ctx), req.instanceId, req.planId, req.parameters ?? {});
        return { instance: instanceToProto(row), started };
      },
      async deprovisionInstance(req, ctx) {
        return { instance: instanceToProto(await instances.deprovision(tenantOf(ctx), req.instanceId)) };
      },
      async getInstanceOperation(req, ctx) {
        return operationToProto(await instances.operation(tenantOf(ctx), req.instanceId, req.operation));
      },
      async bindInstance(req, ctx) {
        const { row, instance, created } = await bindings.bind(tenantOf(ctx), { instanceId: req.instanceId, bindingId: req.bindingId, parameters: req.parameters ?? {} });
        return { binding: bindingToProto(row, instance), created };
      },
      async getBinding(req, ctx) {
        const { row, instance } = await bindings.get(tenantOf(ctx), req.instanceId, req.bindingId);
        return { binding: bindingToProto(row, instance) };
      },
      async unbindInstance(req, ctx) {
        await bindings.unbind(tenantOf(ctx), req.instanceId, req.bindingId);
        return {};
      },
    },
    {
      listInstances: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, filters(r)) },
    },
  );
}

/** The filters of an instance listing, which its page tokens are bound to. */
function filters(r: { state: number }) {
  return { state: r.state };
}
