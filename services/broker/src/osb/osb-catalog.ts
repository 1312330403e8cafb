import type { Catalog } from "../domain/catalog";

/** The catalog in OSB's JSON (`GET /v2/catalog`): each plan carries its parameter schemas. */
export function osbCatalog(catalog: Catalog): Record<string, unknown> {
  return {
    services: catalog.services.map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      bindable: s.bindable,
      plan_updateable: s.planUpdateable,
      instances_retrievable: s.instancesRetrievable,
      bindings_retrievable: s.bindingsRetrievable,
      tags: s.tags,
      plans: s.plans.map((p) => ({
        id: p.id,
        name: p.name,
        description: p.description,
        free: p.free,
        bindable: s.bindable,
        metadata: { cpu: p.cpu, memory_bytes: Number(p.memoryBytes), root_volume_bytes: Number(p.rootVolumeBytes) },
        schemas: {
          service_instance: { create: { parameters: p.schemas.create }, update: { parameters: p.schemas.update } },
          service_binding: { create: { parameters: p.schemas.bind } },
        },
      })),
    })),
  };
}
