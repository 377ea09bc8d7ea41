// The Kubernetes base (deploy/kubernetes/) against the code it deploys: every manifest parses and
// is listed in the kustomization; every variable it sets is one src/config.ts reads, and the
// ConfigMap with stand-in secrets is a valid production configuration; ports, probes and the
// shutdown budget match what the servers do (the probes are sent to a running service); the
// memory limit covers BENCHMARKS.md's peak; the NetworkPolicy keeps the gRPC port (internal RPCs)
// to labelled clients.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { setupService } from "../support/setup.js";

const DIR = path.resolve("deploy/kubernetes");

interface Manifest {
  readonly file: string;
  readonly kind: string;
  readonly apiVersion: string;
  readonly metadata: { readonly name: string };
  readonly [key: string]: unknown;
}

const files = readdirSync(DIR).filter((file) => /\.ya?ml$/.test(file));
const manifests: Manifest[] = files
  .filter((file) => file !== "kustomization.yaml")
  .flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(DIR, file), "utf8")).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return { file, ...(doc.toJS() as Omit<Manifest, "file">) } as Manifest;
    }),
  );
const kustomization = parseAllDocuments(readFileSync(path.join(DIR, "kustomization.yaml"), "utf8"))[0]!.toJS() as { resources: string[] };

function only(kind: string, name?: string): Manifest & Record<string, any> {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  expect(found.map((m) => `${m.kind}/${m.metadata.name}`)).toHaveLength(1);
  return found[0]!;
}

interface Container {
  name: string;
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  [key: string]: any;
}

const deployment = only("Deployment");
const job = only("Job");
const configMap = only("ConfigMap");
const podSpec = deployment.spec.template.spec as { containers: Container[]; [key: string]: any };
const container = podSpec.containers[0]!;
const containers: Container[] = [...podSpec.containers, ...(job.spec.template.spec.containers as Container[])];
const configData = configMap.data as Record<string, string>;

/** Every variable the manifests give a container: the ConfigMap's keys and each `env` entry. */
const variables = new Set<string>([...Object.keys(configData), ...containers.flatMap((c) => (c.env ?? []).map((e) => e.name))]);

describe("deploy/kubernetes", () => {
  it("parses, lists every manifest in its kustomization and every listed file exists", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    for (const manifest of manifests) {
      expect(manifest.apiVersion, manifest.file).toBeTruthy();
      expect(manifest.metadata?.name, manifest.file).toBeTruthy();
    }
    expect([...kustomization.resources].sort()).toEqual(files.filter((file) => file !== "kustomization.yaml").sort());
    // Secrets are referenced, never stored.
    expect(manifests.filter((m) => m.kind === "Secret")).toEqual([]);
  });

  it("sets only variables src/config.ts reads (NAME, or NAME for NAME_FILE)", () => {
    const source = readFileSync(path.resolve("src/config.ts"), "utf8");
    const known = (name: string) => [name, name.replace(/_FILE$/, "")].some((n) => source.includes(`"${n}"`) || new RegExp(`env\\.${n}\\b`).test(source));
    const unknown = [...variables].filter((name) => !known(name));
    expect(unknown).toEqual([]);
    expect(variables.size).toBeGreaterThan(10);
  });

  it("references secrets by the variable's name in one Secret, and loads its ConfigMap", () => {
    for (const c of containers) {
      expect(c.envFrom?.map((e) => e.configMapRef?.name)).toEqual([configMap.metadata.name]);
      for (const entry of c.env ?? []) {
        expect(entry.value, `${entry.name} holds a value in the manifest`).toBeUndefined();
        expect(entry.valueFrom?.secretKeyRef).toMatchObject({ name: "identity-secrets", key: entry.name });
      }
    }
    expect(variables).toContain("DATABASE_URL");
    expect(variables).toContain("KEY_ENCRYPTION_KEYS");
  });

  it("is a valid production configuration, with the ports the container declares", () => {
    const secrets = { DATABASE_URL: "postgres://identity:x@db:5432/identity", KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64")}`, SERVICE_KEYS: `billing:${"k".repeat(40)}` };
    const config = loadConfig({ ...configData, ...secrets });
    expect(config.production).toBe(true);
    const port = (name: string) => container.ports!.find((p) => p.name === name)!.containerPort;
    expect({ grpc: config.grpcPort, http: config.httpPort, metrics: config.metricsPort }).toEqual({ grpc: port("grpc"), http: port("http"), metrics: port("metrics") });
    // The same as the servers' (and the Dockerfile's) defaults.
    const defaults = loadConfig({});
    expect({ grpc: defaults.grpcPort, http: defaults.httpPort, metrics: defaults.metricsPort }).toEqual({ grpc: port("grpc"), http: port("http"), metrics: port("metrics") });
    // Prometheus in another pod must reach the metrics listener.
    expect(config.metricsHost).toBe("0.0.0.0");
    expect(config.grpcConnectionAge.maxAgeMs).toBeGreaterThan(0);

    // SIGTERM comes after preStop; the pod is killed terminationGracePeriodSeconds after preStop began.
    const preStopSeconds = container.lifecycle.preStop.sleep.seconds as number;
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopSeconds + config.shutdownGraceMs / 1000 + 2);
  });

  it("runs as non-root on a read-only root filesystem with a writable /tmp", () => {
    for (const spec of [podSpec, job.spec.template.spec]) {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const c of spec.containers as Container[]) {
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        const tmp = (c.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.mountPath === "/tmp")!;
        expect((spec.volumes as { name: string; emptyDir?: object }[]).find((v) => v.name === tmp.name)?.emptyDir).toBeDefined();
      }
    }
  });

  it("asks for at least the memory BENCHMARKS.md measured at peak", () => {
    const peak = /\| service peak RSS \(VmHWM\) over the run \| (\d+) MiB/.exec(readFileSync(path.resolve("BENCHMARKS.md"), "utf8"));
    expect(peak).not.toBeNull();
    const mebibytes = (quantity: string) => Number(/^(\d+)Mi$/.exec(quantity)![1]);
    expect(mebibytes(container.resources.requests.memory)).toBeGreaterThanOrEqual(Number(peak![1]));
    expect(mebibytes(container.resources.limits.memory)).toBeGreaterThan(mebibytes(container.resources.requests.memory));
    expect(container.resources.limits.cpu).toBeUndefined();
  });

  it("selects the Deployment's pods from its Services, PodDisruptionBudget, NetworkPolicy and HorizontalPodAutoscaler", () => {
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    const services = manifests.filter((m) => m.kind === "Service") as Array<Manifest & Record<string, any>>;
    expect(services.length).toBeGreaterThanOrEqual(1);
    const portNames = new Set(container.ports!.map((p) => p.name));
    for (const service of services) {
      expect(selects(service.spec.selector), service.metadata.name).toBe(true);
      for (const port of service.spec.ports as { targetPort: string }[]) expect(portNames).toContain(port.targetPort);
    }
    expect(selects(only("PodDisruptionBudget").spec.selector.matchLabels)).toBe(true);
    expect(selects(only("NetworkPolicy").spec.podSelector.matchLabels)).toBe(true);
    expect(only("HorizontalPodAutoscaler").spec.scaleTargetRef).toMatchObject({ kind: "Deployment", name: deployment.metadata.name });
  });

  it("lets only labelled client pods reach the gRPC port, where the internal RPCs are served", () => {
    const grpcPort = container.ports!.find((p) => p.name === "grpc")!.containerPort;
    const rules = only("NetworkPolicy").spec.ingress as { ports: { port: number }[]; from?: { podSelector?: { matchLabels: object }; namespaceSelector?: object }[] }[];
    const grpcRules = rules.filter((rule) => rule.ports.some((p) => p.port === grpcPort));
    expect(grpcRules.length).toBeGreaterThan(0);
    for (const rule of grpcRules) {
      expect(rule.from?.length).toBeGreaterThan(0);
      for (const peer of rule.from!) {
        expect(peer.namespaceSelector, "the gRPC port open to whole namespaces").toBeUndefined();
        expect(Object.keys(peer.podSelector?.matchLabels ?? {}).length).toBeGreaterThan(0);
      }
    }
    // Every declared container port has a rule (nothing left reachable by accident, nothing unreachable).
    expect(new Set(rules.flatMap((rule) => rule.ports.map((p) => p.port)))).toEqual(new Set(container.ports!.map((p) => p.containerPort)));
  });
});

describe("the Deployment's probes against a running service", () => {
  const t = setupService();

  it("liveness and startup: GET on the gateway port answers 200", async () => {
    for (const probe of [container.livenessProbe, container.startupProbe]) {
      expect(probe.httpGet.port).toBe("http");
      const response = await fetch(`${t.httpUrl}${probe.httpGet.path}`);
      expect(response.status, probe.httpGet.path).toBe(200);
    }
  });

  it("readiness: grpc.health.v1 on the gRPC port knows the service the probe names and reports SERVING", async () => {
    const probe = container.readinessProbe.grpc as { port: number; service: string };
    expect(probe.service).toBe(TokenService.typeName);
    expect(probe.port).toBe(container.ports!.find((p) => p.name === "grpc")!.containerPort);
    const definition = protoLoader.loadSync(path.resolve("node_modules/grpc-health-check/proto/health/v1/health.proto"), { keepCase: true, enums: String });
    const Health = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
    const client = new Health(t.grpcAddress, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
    };
    const check = (service: string) => new Promise<string>((resolve, reject) => client.Check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));
    try {
      expect(await check(probe.service)).toBe("SERVING");
      // A misspelt name would fail every probe (NOT_FOUND), not pass it.
      await expect(check("identity.v1.TokenServices")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
  });
});
