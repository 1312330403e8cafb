/**
 * @stratum/proto holds only generated code. Import the generated modules by path so that a
 * consumer loads just the descriptors it uses:
 *
 *     import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
 *     import { StatusSchema } from "@stratum/proto/google/rpc/status_pb";
 *
 * This entry point deliberately exports only where the schema and its tooling live, for tests
 * and scripts that drive `buf` (lint, generation, `buf curl`).
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the buf module (`proto/` at the repository root). */
export const protoDir: string = fileURLToPath(new URL("../../../proto", import.meta.url));

/** Absolute path of this package, where `buf.gen.yaml` lives and `buf generate` runs. */
export const packageDir: string = fileURLToPath(new URL("..", import.meta.url));

/** The buf CLI installed for this package (a devDependency: present in dev and CI, not in images). */
export const bufBin: string = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));
