export { networkModule } from "./module";
export { EIP_HOST_STATES } from "./clients/vms";
export { intToIp, ipToInt } from "./domain/ipv4";
