import { runMain } from "@stratum/runtime";
import { storageModule } from "./module";

runMain(storageModule());
