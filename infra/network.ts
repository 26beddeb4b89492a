import { network } from "./settings.ts";

/**
 * One VPC for everything that talks to customers' clusters: the worker, the dispatcher and the
 * large-job task run in its private subnets and leave through managed NAT gateways on Elastic IPs
 * this stack owns, so their traffic to a cluster always comes from the addresses the deploy
 * outputs (`EgressIps`): customers allow those on 5432 instead of the internet. S3 and DynamoDB,
 * the bulk of the traffic (artifacts), go through free gateway endpoints, not through NAT.
 */
export const egressIps = Array.from(
  { length: network.az },
  (_, i) => new aws.ec2.Eip(`Egress${i + 1}`, { domain: "vpc", tags: { Name: `${$app.name}-${$app.stage}-egress-${i + 1}` } }),
);

export const vpc = new sst.aws.Vpc("Vpc", {
  az: network.az,
  nat: { type: "managed", ip: egressIps.map((e) => e.allocationId) },
});

const region = aws.getRegionOutput().name;
const privateRouteTables = vpc.nodes.privateRouteTables.apply((tables) => tables.map((t) => t.id));

export const gatewayEndpoints = network.gatewayEndpoints.map(
  (service) =>
    new aws.ec2.VpcEndpoint(`${service === "s3" ? "S3" : "DynamoDb"}Endpoint`, {
      vpcId: vpc.id,
      serviceName: $interpolate`com.amazonaws.${region}.${service}`,
      vpcEndpointType: "Gateway",
      routeTableIds: privateRouteTables,
    }),
);
