import { runMain } from "@stratum/runtime";
import { computeModule } from "./module";

runMain(computeModule());
