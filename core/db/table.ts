/**
 * The one definition of the service's DynamoDB table. `sst.config.ts` declares the deployed table
 * from it and the local stack (and the test harness) create their tables from it, so keys, indexes
 * and the TTL attribute can never drift between AWS and a laptop.
 *
 * Single-table design: generic string keys, item type in `type`, two sparse global secondary
 * indexes whose meaning depends on the item (see core/db/keys.ts).
 */
export const tableDefinition = {
  partitionKey: "pk",
  sortKey: "sk",
  /** Items with this attribute (epoch seconds) are removed by DynamoDB's TTL: locks, idempotency records. */
  ttlAttribute: "ttl",
  globalIndexes: {
    gsi1: { partitionKey: "gsi1pk", sortKey: "gsi1sk" },
    gsi2: { partitionKey: "gsi2pk", sortKey: "gsi2sk" },
  },
} as const;

export type GlobalIndexName = keyof typeof tableDefinition.globalIndexes;

/** Every key attribute is a string. */
export const keyAttributes: string[] = [
  tableDefinition.partitionKey,
  tableDefinition.sortKey,
  ...Object.values(tableDefinition.globalIndexes).flatMap((i) => [i.partitionKey, i.sortKey]),
];
