export { runFlow, FlowError } from "./flow";
export type { FlowStep } from "./flow";
