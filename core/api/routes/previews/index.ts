import type { App, RouteDeps } from "../../context.ts";
import { registerCreatePreview } from "./create.ts";
import { registerListPreviews } from "./list.ts";
import { registerGetPreview } from "./get.ts";
import { registerDeletePreview } from "./delete.ts";
import { registerResetPreview } from "./reset.ts";
import { registerExtendPreview } from "./extend.ts";
import { registerPreviewConnections } from "./connections.ts";
import { registerPromotePreview } from "./promote.ts";

export function registerPreviewsRoutes(app: App, r: RouteDeps): void {
  registerCreatePreview(app, r);
  registerListPreviews(app, r);
  registerGetPreview(app, r);
  registerDeletePreview(app, r);
  registerResetPreview(app, r);
  registerExtendPreview(app, r);
  registerPreviewConnections(app, r);
  registerPromotePreview(app, r);
}
