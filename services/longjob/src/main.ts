import { runMain } from "@stratum/runtime";
import { longjobModule } from "./module";

runMain(longjobModule());
