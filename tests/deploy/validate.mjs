// Validates the Kubernetes manifests of deploy/kubernetes: every object
// against the Kubernetes schemas that the npm package kubernetes-models
// ships, and the links between them that no schema sees (Service selectors
// against the pod labels, Secrets the pods mount, the controller's selector
// and rights, grace period against the manager's shutdown timeouts).
//   node validate.mjs MANIFEST_DIR CLUSTER_NAME [SECRETS_YAML [KUSTOMIZED_YAML]]
// With IM_BINARY set, every IM_* variable the pods set and every flag the
// controller gets must be one the binary knows (its --help): a misspelt
// variable would be ignored without a word.
// Prints one line per check; exits 1 on the first list of failures.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import yaml from "js-yaml";

const [dir, name, secretsFile, kustomizedFile] = process.argv.slice(2);
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  else console.log("ok   " + what);
};

// kubernetes-models' class for an apiVersion and kind: core kinds live
// under v1/, the others under GROUP/VERSION/.
async function modelOf(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj.apiVersion];
  const module = `kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`;
  const loaded = await import(module);
  return loaded[obj.kind];
}

async function validate(obj, where) {
  try {
    const Model = await modelOf(obj);
    new Model(obj).validate();
    return null;
  } catch (err) {
    return `${where}: ${obj.kind} ${obj.metadata?.name}: ${err.message.split("\n").slice(0, 4).join(" ")}`;
  }
}

// The strategic merge that kustomize applies for our patches: maps merge,
// lists of named items merge by name, anything else is replaced.
function merge(base, patch) {
  if (Array.isArray(base) && Array.isArray(patch) && patch.every((p) => p && p.name)) {
    const out = base.map((b) => ({ ...b }));
    for (const p of patch) {
      const i = out.findIndex((b) => b.name === p.name);
      if (i >= 0) out[i] = merge(out[i], p);
      else out.push(p);
    }
    return out;
  }
  if (base && patch && typeof base === "object" && typeof patch === "object" && !Array.isArray(base)) {
    const out = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  return patch;
}

// A kustomization's objects: its resources (files or kustomization
// folders), then its patches, matched by kind and name.
function build(kdir) {
  const k = yaml.load(fs.readFileSync(path.join(kdir, "kustomization.yaml"), "utf8"));
  let objects = [];
  for (const r of k.resources ?? []) {
    const p = path.join(kdir, r);
    if (fs.statSync(p).isDirectory()) objects.push(...build(p));
    else objects.push(...yaml.loadAll(fs.readFileSync(p, "utf8")).filter(Boolean));
  }
  for (const { path: pp } of k.patches ?? []) {
    const patch = yaml.load(fs.readFileSync(path.join(kdir, pp), "utf8"));
    const i = objects.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
    if (i < 0) throw new Error(`${pp}: no ${patch.kind} ${patch.metadata.name} to patch`);
    objects[i] = merge(objects[i], patch);
  }
  return objects;
}

// Deep equality, map keys in any order, and lists of named items (env,
// volumes, ...) in any order too: kustomize puts patched-in items first.
const named = (l) => Array.isArray(l) && l.length > 0 && l.every((x) => x && typeof x === "object" && x.name);
function equal(a, b) {
  if (named(a) && named(b))
    return equal(Object.fromEntries(a.map((x) => [x.name, x])), Object.fromEntries(b.map((x) => [x.name, x])));
  if (Array.isArray(a) || Array.isArray(b))
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return equal(ka, kb) && ka.every((k) => equal(a[k], b[k]));
  }
  return a === b;
}

const find = (objs, kind, n) => objs.find((o) => o.kind === kind && o.metadata.name === n);
const env = (c, n) => (c.env ?? []).find((e) => e.name === n)?.value;
const duration = (s) => (s.endsWith("ms") ? Number(s.slice(0, -2)) / 1000 : Number(s.slice(0, -1)));

async function checkCluster(objs, label, secrets) {
  for (const o of objs) {
    const err = await validate(o, label);
    check(!err, err ?? `${label}: ${o.kind} ${o.metadata.name} is valid against the schema`);
  }
  const sts = find(objs, "StatefulSet", name);
  check(sts, `${label}: a StatefulSet named ${name}`);
  if (!sts) return;
  const pod = sts.spec.template;
  const podLabels = pod.metadata.labels;
  const c = pod.spec.containers.find((x) => x.name === "postgres");
  check(sts.spec.replicas === 3, `${label}: three instances`);
  check(sts.spec.podManagementPolicy === "Parallel", `${label}: pods start together (a re-created cluster comes back whole)`);
  check(sts.spec.volumeClaimTemplates?.length === 1, `${label}: a volumeClaimTemplate`);
  check(sts.spec.persistentVolumeClaimRetentionPolicy?.whenDeleted === "Retain", `${label}: volumes kept when the StatefulSet is deleted`);
  check(find(objs, "Service", sts.spec.serviceName)?.spec.clusterIP === "None", `${label}: the StatefulSet's headless Service`);
  check(c.startupProbe?.httpGet?.path === "/startupz" && c.livenessProbe?.httpGet?.path === "/healthz" && c.readinessProbe?.httpGet?.path === "/readyz",
        `${label}: startup, liveness and readiness probes on the manager's endpoints`);
  check(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 3600, `${label}: a long WAL replay or clone (an hour at least) does not get the pod killed`);
  const stop = duration(env(c, "IM_SMART_SHUTDOWN_TIMEOUT")) + duration(env(c, "IM_FAST_SHUTDOWN_TIMEOUT"));
  check(pod.spec.terminationGracePeriodSeconds > stop, `${label}: terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} > smart + fast shutdown ${stop}s`);
  check(pod.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm?.topologyKey === "kubernetes.io/hostname",
        `${label}: anti-affinity across nodes`);
  check(env(c, "IM_BOOTSTRAP_INSTANCE") === `${name}-0`, `${label}: pod 0 is the bootstrap instance`);
  check(env(c, "IM_PRIMARY_CONNINFO")?.includes(`host=${name}-rw `), `${label}: new instances clone from ${name}-rw`);
  check(c.env.find((e) => e.name === "IM_NAME")?.valueFrom?.fieldRef?.fieldPath === "metadata.name", `${label}: the instance is named after its pod`);
  // One source of settings: the ConfigMap, mounted as a volume (edits reach
  // the pods; a subPath mount would not), named by every member's flags.
  const params = find(objs, "ConfigMap", `${name}-parameters`);
  const pvol = pod.spec.volumes.find((v) => v.configMap?.name === `${name}-parameters`);
  const pmount = c.volumeMounts.find((m) => m.name === pvol?.name && !m.subPath);
  check(params?.data?.["postgresql.conf"] !== undefined && params?.data?.["pg_hba.conf"] !== undefined && pmount &&
        env(c, "IM_PG_PARAMETERS_FILE") === `${pmount.mountPath}/postgresql.conf` &&
        env(c, "IM_PG_HBA_FILE") === `${pmount.mountPath}/pg_hba.conf`,
        `${label}: the ${name}-parameters ConfigMap is every member's parameters and hba file`);
  const pdb = objs.find((o) => o.kind === "PodDisruptionBudget");
  check(pdb && JSON.stringify(pdb.spec.selector.matchLabels) === JSON.stringify(podLabels), `${label}: a PodDisruptionBudget over the instances`);

  const selects = (svc, extra) => {
    const want = { ...podLabels, ...extra };
    const sel = find(objs, "Service", svc)?.spec.selector ?? {};
    return Object.keys(want).length === Object.keys(sel).length && Object.entries(want).every(([k, v]) => sel[k] === v);
  };
  check(selects(`${name}-rw`, { role: "primary" }), `${label}: ${name}-rw selects role=primary`);
  check(selects(`${name}-ro`, { role: "replica" }), `${label}: ${name}-ro selects role=replica`);
  check(selects(`${name}-r`, {}), `${label}: ${name}-r selects every instance`);

  // Every Secret a pod mounts is one secrets.sh makes, with the key read.
  const mounted = [...pod.spec.volumes, ...find(objs, "Deployment", `${name}-controller`).spec.template.spec.volumes]
    .filter((v) => v.secret).map((v) => v.secret.secretName);
  for (const s of new Set(mounted)) {
    const secret = secrets.find((x) => x.metadata.name === s);
    check(secret, `${label}: Secret ${s} comes from secrets.sh`);
  }
  for (const [varName, dirName] of [["IM_APP_PASSWORD_FILE", "app"], ["IM_REPLICATION_PASSWORD_FILE", "replication"], ["IM_API_TOKEN_FILE", "api"]]) {
    const file = env(c, varName);
    const mount = c.volumeMounts.find((m) => file?.startsWith(m.mountPath + "/"));
    const vol = mount && pod.spec.volumes.find((v) => v.name === mount.name);
    const secret = vol && secrets.find((x) => x.metadata.name === vol.secret?.secretName);
    const key = file && path.basename(file);
    check(secret && key in (secret.stringData ?? {}), `${label}: ${varName} is key ${key} of a mounted Secret (${dirName})`);
  }

  if (process.env.IM_BINARY) {
    const help = (cmd) => execFileSync(process.env.IM_BINARY, [cmd, "--help"], { encoding: "utf8" });
    const runHelp = help("run"), controllerHelp = help("controller");
    for (const e of c.env.filter((e) => e.name.startsWith("IM_") || e.name === "PGDATA"))
      check(runHelp.includes(`(Env:${e.name})`), `${label}: instance-manager run knows ${e.name}`);
    const ctlArgs = find(objs, "Deployment", `${name}-controller`).spec.template.spec.containers[0].args;
    for (const a of ctlArgs.filter((a) => a.startsWith("--")))
      check(new RegExp(`\\s${a}[\\s,]`).test(controllerHelp), `${label}: instance-manager controller knows ${a}`);
  }

  // The controller: its selector is the pods' label, its rights are few.
  const dep = find(objs, "Deployment", `${name}-controller`);
  const args = dep.spec.template.spec.containers[0].args;
  check(dep.spec.replicas === 1 && args.includes("--kubernetes"), `${label}: one controller in Kubernetes mode`);
  check(args[args.indexOf("--selector") + 1] === `app=${podLabels.app}`, `${label}: the controller selects the instances' pods`);
  check(args[args.indexOf("--member-domain") + 1] === sts.spec.serviceName && find(objs, "Service", sts.spec.serviceName).spec.publishNotReadyAddresses === true,
        `${label}: members by their DNS names under the headless Service, not-ready pods included`);
  check(args[args.indexOf("--member-port") + 1] === String(c.ports.find((p) => p.name === "api").containerPort), `${label}: the controller knows the API port`);
  const role = find(objs, "Role", `${name}-controller`);
  const rule = (group, resource) => role?.rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource));
  check(role && role.rules.length === 2 && JSON.stringify(rule("", "pods")?.resources) === '["pods"]' &&
        JSON.stringify([...rule("", "pods").verbs].sort()) === '["delete","get","list","patch","watch"]' &&
        JSON.stringify(rule("apps", "statefulsets")?.verbs) === '["get"]',
        `${label}: the Role allows get/list/watch/patch/delete on pods and get on statefulsets, nothing else`);
  // Pods are replaced by the controller in role order (replicas, a
  // switchover, the old primary), not by the StatefulSet's own order.
  check(sts.spec.updateStrategy?.type === "OnDelete", `${label}: the StatefulSet updates OnDelete`);
  const binding = find(objs, "RoleBinding", `${name}-controller`);
  check(binding?.subjects?.[0]?.name === dep.spec.template.spec.serviceAccountName && find(objs, "ServiceAccount", binding.subjects[0].name),
        `${label}: the RoleBinding gives the Role to the controller's ServiceAccount`);
}

const secrets = secretsFile ? yaml.loadAll(fs.readFileSync(secretsFile, "utf8")).filter(Boolean) : [];
for (const s of secrets) {
  const err = await validate(s, "secrets.sh");
  check(!err, err ?? `secrets.sh: Secret ${s.metadata.name} is valid against the schema`);
}
check(secrets.find((s) => s.metadata.name === `${name}-app`)?.type === "kubernetes.io/basic-auth" &&
      secrets.find((s) => s.metadata.name === `${name}-app`).stringData.username === "app",
      `secrets.sh: ${name}-app is a basic-auth Secret for user app`);

await checkCluster(build(path.join(dir, "cluster")), "base", secrets);
const su = build(path.join(dir, "with-superuser"));
await checkCluster(su, "superuser", secrets);
const suEnv = find(su, "StatefulSet", name).spec.template.spec.containers[0].env;
check(suEnv.some((e) => e.name === "IM_SUPERUSER_PASSWORD_FILE"), "superuser: the overlay turns superuser access on");
check(!find(build(path.join(dir, "cluster")), "StatefulSet", name).spec.template.spec.containers[0].env.some((e) => e.name === "IM_SUPERUSER_PASSWORD_FILE"),
      "base: no superuser access unless asked for");
// Backups: a repository on a ReadWriteMany claim, or S3 with its keys in a Secret.
const bk = build(path.join(dir, "with-backups"));
await checkCluster(bk, "backups", secrets);
const bkPod = find(bk, "StatefulSet", name).spec.template.spec;
const bkC = bkPod.containers.find((x) => x.name === "postgres");
check(env(bkC, "IM_BACKUP_STANZA") === name, "backups: the stanza is the cluster's name");
const claim = yaml.load(fs.readFileSync(path.join(dir, "with-backups", "backup-claim.yaml"), "utf8"));
const claimErr = await validate(claim, "backup-claim");
check(!claimErr && claim.metadata.name === `${name}-backup` && claim.spec.accessModes.includes("ReadWriteMany"),
      claimErr ?? "backups: the repository is a ReadWriteMany claim of its own");
check(!bk.some((o) => o.kind === "PersistentVolumeClaim"),
      "backups: deleting the cluster (delete -k) leaves the repository's claim");
const bkVol = bkPod.volumes.find((v) => v.persistentVolumeClaim?.claimName === `${name}-backup`);
const bkMount = bkVol && bkC.volumeMounts.find((m) => m.name === bkVol.name);
check(bkMount && env(bkC, "IM_BACKUP_REPO")?.startsWith(bkMount.mountPath + "/"),
      "backups: the repository path lies on the mounted claim");
const bkCtl = find(bk, "Deployment", `${name}-controller`).spec.template.spec.containers[0];
check(env(bkCtl, "IM_BACKUP_SCHEDULE")?.startsWith("full="), "backups: the controller has a backup schedule");
if (process.env.IM_BINARY)
  check(execFileSync(process.env.IM_BINARY, ["controller", "--help"], { encoding: "utf8" }).includes("(Env:IM_BACKUP_SCHEDULE)"),
        "backups: instance-manager controller knows IM_BACKUP_SCHEDULE");
const s3 = build(path.join(dir, "with-backups-s3"));
await checkCluster(s3, "backups-s3", secrets);
const s3C = find(s3, "StatefulSet", name).spec.template.spec.containers.find((x) => x.name === "postgres");
check(env(s3C, "PGBACKREST_REPO1_TYPE") === "s3" && env(s3C, "IM_BACKUP_STANZA") === name,
      "backups-s3: an S3 repository for the cluster's stanza");
for (const v of ["PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET", "PGBACKREST_REPO1_CIPHER_PASS"]) {
  const e = s3C.env.find((x) => x.name === v);
  check(e && e.value === undefined && e.valueFrom?.secretKeyRef?.name === `${name}-backup-s3`,
        `backups-s3: ${v} comes from the Secret ${name}-backup-s3, never a literal`);
}
check(find(s3, "Deployment", `${name}-controller`).spec.template.spec.containers[0].env?.some((e) => e.name === "IM_BACKUP_SCHEDULE"),
      "backups-s3: the controller has a backup schedule");

// Standby backups: every pod runs pgBackRest's TLS server with the
// certificate of the Secret secrets.sh makes, reached by its name under the
// headless Service, which that certificate must cover.
for (const [label, objs] of [["backups", bk], ["backups-s3", s3]]) {
  const sts = find(objs, "StatefulSet", name);
  const pod = sts.spec.template.spec;
  const c = pod.containers.find((x) => x.name === "postgres");
  const tls = secrets.find((x) => x.metadata.name === `${name}-backup-tls`);
  for (const [v, key] of [["IM_BACKUP_TLS_CERT", "tls.crt"], ["IM_BACKUP_TLS_KEY", "tls.key"], ["IM_BACKUP_TLS_CA", "ca.crt"]]) {
    const file = env(c, v);
    const mount = c.volumeMounts.find((m) => file?.startsWith(m.mountPath + "/"));
    const vol = mount && pod.volumes.find((x) => x.name === mount.name);
    check(vol?.secret?.secretName === `${name}-backup-tls` && path.basename(file) === key && tls && key in tls.stringData,
          `${label}: ${v} is key ${key} of the mounted Secret ${name}-backup-tls`);
  }
  check(env(c, "IM_BACKUP_SERVER_HOST") === `$(IM_NAME).${sts.spec.serviceName}` &&
        c.env.findIndex((e) => e.name === "IM_NAME") < c.env.findIndex((e) => e.name === "IM_BACKUP_SERVER_HOST"),
        `${label}: each pod's server by its name under the headless Service (IM_NAME defined before it)`);
  check(String(c.ports.find((p) => p.name === "pgbackrest")?.containerPort) === env(c, "IM_BACKUP_SERVER_PORT"),
        `${label}: the pgbackrest port is the server's`);
  if (tls) {
    const cert = new X509Certificate(tls.stringData["tls.crt"]);
    const ca = new X509Certificate(tls.stringData["ca.crt"]);
    check(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${label}: the CA of ${name}-backup-tls signed its certificate`);
    // pgBackRest matches a wildcard over one label ("*.x" covers "a.x"),
    // where OpenSSL's own host check wants two dots after it.
    check((cert.subjectAltName ?? "").split(", ").includes(`DNS:*.${sts.spec.serviceName}`),
          `${label}: the certificate covers ${name}-N.${sts.spec.serviceName} (${cert.subjectAltName})`);
    check(cert.subject.includes(`CN=${name}-pgbackrest`), `${label}: the certificate's common name is the client every server allows`);
  }
}

// kind with each instance's data in a host folder: a class without a
// provisioner, one Retain volume per pod bound to its claim by name.
const kh = build(path.join(dir, "examples", "kind-hostpath"));
await checkCluster(kh, "kind-hostpath", secrets);
const khSts = find(kh, "StatefulSet", name);
const khClass = khSts.spec.volumeClaimTemplates[0].spec.storageClassName;
const sc = kh.find((o) => o.kind === "StorageClass" && o.metadata.name === khClass);
check(sc?.provisioner === "kubernetes.io/no-provisioner" && sc.reclaimPolicy === "Retain",
      "kind-hostpath: the claims' StorageClass provisions nothing and retains");
for (let n = 0; n < khSts.spec.replicas; n++) {
  const pv = kh.find((o) => o.kind === "PersistentVolume" && o.spec.claimRef?.name === `${khSts.spec.volumeClaimTemplates[0].metadata.name}-${name}-${n}`);
  check(pv && pv.spec.storageClassName === khClass && pv.spec.persistentVolumeReclaimPolicy === "Retain" &&
        pv.spec.hostPath?.path === `/pgdata/instance-${n}` && pv.spec.hostPath.type === "Directory",
        `kind-hostpath: pod ${name}-${n}'s claim binds a retained volume on /pgdata/instance-${n} (made beforehand)`);
}

const lb = yaml.load(fs.readFileSync(path.join(dir, "loadbalancer-example.yaml"), "utf8"));
const lbErr = await validate(lb, "loadbalancer-example");
check(!lbErr && lb.spec.type === "LoadBalancer" && lb.spec.selector.role === "primary", lbErr ?? "loadbalancer-example: a valid LoadBalancer to the primary");

// kubectl's own kustomize, where it is at hand, must build the same objects.
if (kustomizedFile) {
  const key = (o) => `${o.kind}/${o.metadata.name}`;
  const theirs = yaml.loadAll(fs.readFileSync(kustomizedFile, "utf8")).filter(Boolean);
  check(equal(su.map(key).sort(), theirs.map(key).sort()), "kubectl kustomize builds the same objects");
  for (const o of yaml.loadAll(fs.readFileSync(kustomizedFile, "utf8")).filter(Boolean)) {
    const mine = su.find((x) => key(x) === key(o));
    check(mine && equal(mine, o), `kubectl kustomize agrees on ${key(o)}`);
  }
}

// The schema check itself must be able to fail.
const broken = structuredClone(find(build(path.join(dir, "cluster")), "StatefulSet", name));
broken.spec.replicas = "three";
check(await validate(broken, "broken") !== null, "a StatefulSet with replicas: \"three\" is refused by the schema");

if (failures.length) {
  for (const f of failures) console.log("FAIL " + f);
  process.exit(1);
}
console.log(`all manifest checks passed (${name})`);
