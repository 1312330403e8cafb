export { storageModule } from "./module";
export { VOLUME_TRANSITIONS, RESIZABLE_STATES, statesLeadingTo } from "./domain/volume-state";
export { VOLUME_CHANGED } from "./store/volume-events";
