#!/usr/bin/env bash
# Soak a scenario file against the testbed while recording every Pod, EndpointSlice and Service
# change cluster-wide (watch events with resourceVersions), then replay the slices of each
# scenario's namespace to find where the cluster itself routed a Service's traffic.
#
#   bash benches/endpoint-soak.sh FILE.rollout COPIES JOBS OUTDIR [ROUNDS]
#   bash benches/endpoint-soak.sh --analyse OUTDIR/round-N [SERVICE]
#
# Copies get unique scenario names and base-dir pointing at examples/. Each round writes
# OUTDIR/round-N/{pods,slices,services}.json, report.json, results/, run.err. The analysis prints,
# per namespace: slice versions that route (kube-proxy's rule: ready endpoints, else serving and
# terminating) to a pod after a version that did not while the pod no longer matched the Service
# (a pod relabelled out of a Service and routed again), versions with nothing routed between the
# first routed version and teardown (what an always-serving guard would catch), failed steps and
# guard violations, each with the namespace's interleaved pod/slice timeline. The testbed's pace
# is printed before and after each round: compare only rounds run at one pace.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${1:-} == --analyse ]]; then
  exec python3 - "$2" "${3:-rng}" <<'PY'
import json, sys, collections
d, service = sys.argv[1], sys.argv[2]
def stream(path):
    dec = json.JSONDecoder(); buf = open(path).read(); i = 0
    while i < len(buf):
        while i < len(buf) and buf[i].isspace(): i += 1
        if i >= len(buf): break
        try: obj, i = dec.raw_decode(buf, i)
        except json.JSONDecodeError: break  # the watcher was stopped mid-object
        yield obj
ev = collections.defaultdict(list)
for e in stream(f'{d}/slices.json'):
    m = e['object']['metadata']
    if m.get('labels', {}).get('kubernetes.io/service-name') != service: continue
    eps = [(x.get('targetRef', {}).get('name'), x.get('conditions', {})) for x in e['object'].get('endpoints') or []]
    ev[m['namespace']].append((int(m['resourceVersion']), 'slice', e['type'], m['name'], eps))
for e in stream(f'{d}/pods.json'):
    o = e['object']; m = o['metadata']
    ready = next((c['status'] for c in o.get('status', {}).get('conditions', []) if c['type'] == 'Ready'), None)
    ev[m['namespace']].append((int(m['resourceVersion']), 'pod', e['type'], m['name'], (m.get('labels', {}), bool(m.get('deletionTimestamp')), ready)))
import os
for e in (stream(f'{d}/services.json') if os.path.exists(f'{d}/services.json') else []):
    m = e['object']['metadata']
    if m['name'] == service:
        ev[m['namespace']].append((int(m['resourceVersion']), 'service', e['type'], m['name'], e['object']['spec'].get('selector') or {}))
def routed(state):
    eps = {}
    for lst in state.values():
        for t, c in lst:
            r = c.get('ready', True); s = c.get('serving', r); term = c.get('terminating', False)
            a, b = eps.get(t, (False, False)); eps[t] = (a or (r and not term), b or (s and term))
    ready = sorted(t for t, v in eps.items() if v[0])
    return ready or sorted(t for t, v in eps.items() if v[1])
def show(x):
    rv, kind, typ, name, data = x
    if kind == 'slice':
        eps = ', '.join(f"{t}[ready={c.get('ready')} serving={c.get('serving')} terminating={c.get('terminating')}]" for t, c in data)
        return f"  rv={rv} slice {typ} {name}: {eps or '(no endpoints)'}"
    if kind == 'service': return f"  rv={rv} service {typ} selector={data}"
    labels, deleting, ready = data
    lab = ','.join(f'{k}={v}' for k, v in sorted(labels.items()) if 'hash' not in k and 'generation' not in k)
    return f"  rv={rv} pod {typ} {name} [{lab}] Ready={ready}{' deleting' if deleting else ''}"
rep = json.load(open(f'{d}/report.json'))
tally = collections.Counter()
for s in rep['scenarios']:
    ns = s['namespace']; evs = sorted(ev.get(ns, []), key=lambda x: x[0])
    findings = [f"step at line {st['line']} {st['status']}: {st['step']}: {st.get('observed') or st.get('message') or ''}" for st in s['steps'] if st['status'] not in ('passed', 'skipped')]
    findings += [f"guard at line {g.get('line')} {v}" for g in s.get('guards', []) for v in g.get('violations', [])]
    state, labels, deleting, selector, was_routed, settled = {}, {}, {}, {}, {}, False
    for x in evs:
        rv, kind, typ, name, data = x
        if kind == 'pod':
            labels[name], deleting[name] = data[0], data[1] or typ == 'DELETED'
        elif kind == 'service':
            selector = data
        else:
            if typ == 'DELETED': state.pop(name, None)
            else: state[name] = data
            now = routed(state)
            for p in now:
                if p in labels and was_routed.get(p) is False and selector and \
                        not all(labels[p].get(k) == v for k, v in selector.items()):
                    findings.append(f"rv={rv}: routes to {p}, which no longer matches {selector}, after a version that did not")
            for p in labels: was_routed[p] = p in now
            live = [p for p in labels if not deleting[p]]
            if now: settled = True
            elif settled and live:  # not the teardown, where every pod is being deleted
                findings.append(f"rv={rv}: nothing routed while {len(live)} live pod(s) exist")
    tally['scenarios'] += 1; tally['failed'] += s['status'] != 'passed'; tally['flagged'] += bool(findings)
    if findings:
        print(f"== {s['scenario']} ({s['status']}) namespace {ns}")
        for f in findings: print('   ' + f)
        for x in evs: print(show(x))
print(dict(tally))
PY
fi
file=$1; copies=$2; jobs=$3; out=$4; rounds=${5:-1}
export KUBECONFIG=${KUBECONFIG:-$("$here/tests/testbed/testbed.sh" env | sed -n 's/^export KUBECONFIG=//p')}
kubectl=$(ls -d ~/.cache/rehearse-testbed/k8s-*/bin/kubectl | head -n 1)
mkdir -p "$out/in"
for i in $(seq -w 1 "$copies"); do
  sed -e "s#^base-dir .*#base-dir \"$here/examples\"#" -e "s#^\(\s*scenario \"[^\"]*\)\"#\1 \#$i\"#" "$file" \
    > "$out/in/$(basename "$file" .rollout)-copy-$i.rollout"
done
for r in $(seq 1 "$rounds"); do
  d="$out/round-$r"; mkdir -p "$d"
  bash "$here/tests/testbed/testbed.sh" status | grep '^pace' | sed 's/^/before: /'
  pids=()
  for kind in pods endpointslices services; do
    timeout 1800 "$kubectl" get "$kind" -A --watch --output-watch-events -o json > "$d/${kind/endpoint/}.json" 2> "$d/$kind.err" &
    pids+=($!)
  done
  sleep 2
  start=$(date +%s)
  "$here/target/debug/rehearse" run --jobs "$jobs" --results "$d/results" --report "json=$d/report.json" "$out/in" \
    > "$d/run.out" 2> "$d/run.err"
  echo "round $r: exit $? in $(( $(date +%s) - start ))s"
  sleep 3
  kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
  bash "$here/tests/testbed/testbed.sh" status | grep '^pace' | sed 's/^/after: /'
  bash "$0" --analyse "$d" | tail -n 1
done
