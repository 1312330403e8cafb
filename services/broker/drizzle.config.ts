import { defineConfig } from "drizzle-kit";

// `pnpm --filter @stratum/broker db:generate` after changing src/store/schema.ts; commit drizzle/.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./drizzle",
  schemaFilter: ["broker"],
});
