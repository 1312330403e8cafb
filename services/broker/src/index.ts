export { brokerModule } from "./module";
export type { BrokerModuleOptions } from "./module";
export { Catalog } from "./domain/catalog";
export { Tenancy } from "./domain/tenancy";
export { PROVISION_JOB, UPDATE_JOB, DEPROVISION_JOB } from "./domain/instance-jobs";
