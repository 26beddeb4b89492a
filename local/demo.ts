import pg from "pg";

/**
 * The demo project's database: a small shop with foreign keys, an index, a sequence, a view and a
 * few MB of rows, so a backup of it exercises what real schemas have. Idempotent.
 */
export const demoSchemaSql = `
CREATE SEQUENCE IF NOT EXISTS invoice_number_seq START 1000;
CREATE TABLE IF NOT EXISTS customers (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS products (
  id serial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  title text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers(id),
  invoice_number bigint NOT NULL DEFAULT nextval('invoice_number_seq'),
  status text NOT NULL DEFAULT 'paid',
  placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders (customer_id, placed_at DESC);
CREATE TABLE IF NOT EXISTS order_items (
  order_id bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  product_id integer NOT NULL REFERENCES products(id),
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, product_id)
);
CREATE OR REPLACE VIEW customer_revenue AS
  SELECT c.id, c.email, sum(oi.quantity * p.price_cents) AS revenue_cents
  FROM customers c JOIN orders o ON o.customer_id = c.id
  JOIN order_items oi ON oi.order_id = o.id JOIN products p ON p.id = oi.product_id
  GROUP BY c.id, c.email;
`;

export const demoDataSql = `
INSERT INTO products (sku, title, price_cents)
  SELECT 'SKU-' || g, 'Product ' || g, (g * 137) % 10000 FROM generate_series(1, 500) g;
INSERT INTO customers (email, name)
  SELECT 'customer' || g || '@example.com', 'Customer ' || g FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, status, placed_at)
  SELECT 1 + (g * 7919) % 20000, (ARRAY['paid','shipped','refunded'])[1 + g % 3], now() - (g || ' minutes')::interval
  FROM generate_series(1, 40000) g;
INSERT INTO order_items (order_id, product_id, quantity)
  SELECT o.id, 1 + ((o.id * k) % 500), 1 + (o.id + k) % 5
  FROM orders o CROSS JOIN generate_series(1, 2) k
  ON CONFLICT DO NOTHING;
`;

/** Creates database `name` on the server if missing and fills it with the demo schema and rows. */
export async function ensureDemoDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(demoSchemaSql);
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM customers");
    if (rows[0]?.n === "0") {
      await db.query("BEGIN");
      await db.query(demoDataSql);
      await db.query("COMMIT");
    }
  } finally {
    await db.end();
  }
}
