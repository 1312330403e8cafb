import { runMain } from "@stratum/runtime";
import { brokerModule } from "./module";

runMain(brokerModule());
