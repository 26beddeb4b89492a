import { secrets as secretSettings, type SecretName } from "./settings.ts";

/** One `sst.Secret` per name in settings.ts, with its placeholder (none for the cluster key). */
export const secrets = Object.fromEntries(Object.entries(secretSettings).map(([name, placeholder]) => [name, new sst.Secret(name, placeholder)])) as Record<
  SecretName,
  sst.Secret
>;
