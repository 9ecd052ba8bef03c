#!/usr/bin/env bash
# Time and peak memory of `rehearse check` on generated bad input (issue 10): each must end in a
# clear error or a pass, in time and memory proportional to its size.
#
#   benches/bad-input.sh [BINARY]    (default: target/release/rehearse; build it first)
#
# Prints one line per input: wall seconds, peak RSS (KB), exit code, bytes of output.
set -euo pipefail
bin=$(realpath "${1:-target/release/rehearse}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

python3 - <<'EOF'
def write(name, text):
    with open(name, "w") as f:
        f.write(text)
# 1. One step whose selector has 262,000 terms.
write("selector.rollout", 'scenario "s" {\n    expect pods ' + ",".join(f"key{i}=v" for i in range(262_000)) + " count 1\n}\n")
# 2. Broken lines, 10,000 and 40,000 (1 MB).
for n in (10_000, 40_000):
    write(f"bad{n}.rollout", 'scenario "s" {\n' + "    frobnicate the widget\n" * n + "}\n")
# 3. 10,000 unclosed scenarios.
write("nested.rollout", 'scenario "s" {\n' * 10_000)
# 4. 15 MB of valid steps (just under the 16 MiB limit), and 50 MB (refused).
step = 'scenario "s{}" {{\n    label pods app=rng active=yes\n    expect pods app=rng count 3\n}}\n'
for name, size in (("valid15m.rollout", 15 << 20), ("valid50m.rollout", 50 << 20)):
    with open(name, "w") as f:
        written, i = 0, 0
        while written < size:
            text = step.format(i)
            f.write(text)
            written += len(text)
            i += 1
# 4b. 15 MB of valid steps in one scenario (the parser reads a scenario one line at a time).
with open("onescenario15m.rollout", "w") as f:
    f.write('scenario "s" {\n')
    line = "    label pods app=rng round=a\n"
    f.write(line * ((15 << 20) // len(line)))
    f.write("}\n")
# 8. YAML run would refuse: an alias bomb and nesting 3,000 deep.
laughs = ["  l0: &a0 [lol]"] + [f"  l{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 10) + "]" for i in range(1, 10)]
write("laughs.yaml", "kind: ConfigMap\ndata:\n" + "\n".join(laughs) + "\n")
write("deep.yaml", "".join(" " * i + "k:\n" for i in range(3000)) + " " * 3000 + "v\n")
for name in ("laughs", "deep"):
    write(f"yaml-{name}.rollout", f'scenario "s" {{\n    apply "{name}.yaml"\n}}\n')
EOF
# 5. A symlink loop; 6. a FIFO; 7. a directory with no script.
mkdir -p loop/sub empty
cp yaml-laughs.rollout laughs.yaml loop/
ln -s .. loop/sub/up
ln -s . loop/self
mkfifo fifo.rollout

run() {
    local name=$1
    shift
    local code seconds kb
    code=0
    /usr/bin/time -f '%e %M' -o time.txt timeout 120 "$bin" check "$@" >out.txt 2>&1 || code=$?
    read -r seconds kb < <(tail -n 1 time.txt) || { seconds='?'; kb='?'; }
    printf '%-22s %8s s %10s KB  exit %3s  %9s bytes of output\n' "$name" "$seconds" "$kb" "$code" "$(wc -c <out.txt)"
}

run "selector 262k terms" selector.rollout
run "10,000 bad lines" bad10000.rollout
run "40,000 bad lines" bad40000.rollout
run "10,000 unclosed" nested.rollout
run "15 MB valid" valid15m.rollout
run "15 MB, one scenario" onescenario15m.rollout
run "50 MB valid" valid50m.rollout
run "symlink loop" loop
run "FIFO" fifo.rollout
run "empty directory" empty
run "billion laughs" yaml-laughs.rollout
run "3,000-deep YAML" yaml-deep.rollout
