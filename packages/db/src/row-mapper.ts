import { getTableColumns, getTableName, type Table } from "drizzle-orm";
import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";

/**
 * Maps a raw row of a hand-written statement (`RETURNING *` through postgres-js, keyed by SQL
 * column names, values as the driver gives them) the way drizzle maps its own results: property
 * names and `mapFromDriverValue` of each column. Hand-written statements are the batched ones
 * (`unnest` arrays, CTEs) that drizzle's builder cannot express.
 */
export function rowMapper<T extends Table>(table: T): (raw: Record<string, unknown>) => T["$inferSelect"] {
  const columns = Object.entries(getTableColumns(table));
  return (raw) => {
    const row: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const value = raw[column.name];
      row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return row as T["$inferSelect"];
  };
}

/** `"schema"."table"` of a drizzle table, quoted for hand-written SQL. */
export function qualifiedName(table: PgTable): string {
  const { schema } = getTableConfig(table);
  const name = getTableName(table);
  return schema ? `"${schema}"."${name}"` : `"${name}"`;
}
