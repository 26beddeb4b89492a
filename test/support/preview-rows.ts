import pg from "pg";

/** `SELECT count(*), max(id)` of `table`, read over a preview's connection string as its user would. */
export async function countAndMaxId(connectionString: string, table: string): Promise<{ n: string; max: number }> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; max: number }>(`SELECT count(*) AS n, max(id) AS max FROM ${table}`);
    return rows[0]!;
  } finally {
    await client.end();
  }
}
