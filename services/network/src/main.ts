import { runMain } from "@stratum/runtime";
import { networkModule } from "./module";

runMain(networkModule());
