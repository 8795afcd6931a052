#!/usr/bin/env bash
# CI's second leg: the current Node LTS (the version a student installing Node today gets).
# Node versions break native builds (naudiodon's PortAudio binding) and change defaults, so this
# leg installs from a clean copy of the checkout (no node_modules built by another Node) and runs
# what those differences can break: `npm ci` with the native builds, the typecheck, the audio
# (PortAudio) tests, and every stage's grade on the reference implementation.
# The rest of the suite runs on the machine's own Node in .ci/run; the two legs share no files.
#
# Node comes from the npm registry as the package node-linux-<arch>@<exact version>: its tarball
# carries bin/node and the C headers, so node-gyp builds against it with no further download.
# It is cached in ~/.cache/voice-chat-course/node-<version> and checked by the version it prints.
#
# Last line: "Node <version> leg: N passed, N failed, N skipped" (counts: tap's tests, the grades' checks, and
# one failure for each setup step that failed). Exit 0 only when nothing failed.
set -uo pipefail

# Pinned exactly, so a new Node release cannot change CI without a commit that says so.
# To try another version by hand: NODE_LTS_VERSION=22.23.3 bash .ci/node-lts-leg.sh
NODE_LTS_VERSION=${NODE_LTS_VERSION:-24.21.0}

repo=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
skipped=0
label="Node ${NODE_LTS_VERSION}"

say() { echo "[$label] $*"; }
finish() {
  echo "$label leg: ${passed} passed, ${failed} failed, ${skipped} skipped"
  [ "$failed" -eq 0 ]
  exit
}
fail_step() {
  say "FAILED: $*" >&2
  failed=$((failed + 1))
}

work=$(mktemp -d "${TMPDIR:-/tmp}/node-lts-leg.XXXXXX") || { fail_step "cannot make a temporary folder"; finish; }
trap 'rm -rf "$work"' EXIT

# Prints the folder of an unpacked node-linux-<arch> package whose bin/node is exactly the pinned
# version: the cached one, or a fresh download (then cached when the cache folder is writable).
fetch_node() {
  local arch cache node_dir download
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) say "no node-linux package for machine type $(uname -m)" >&2; return 1 ;;
  esac
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/voice-chat-course"
  node_dir="$cache/node-${NODE_LTS_VERSION}"
  if [ "$("$node_dir/bin/node" --version 2>/dev/null)" = "v${NODE_LTS_VERSION}" ]; then
    say "using the cached $node_dir" >&2
    echo "$node_dir"
    return 0
  fi

  say "downloading node-linux-${arch}@${NODE_LTS_VERSION} from the npm registry" >&2
  download="$work/node-download"
  mkdir -p "$download"
  # npm checks the tarball against the registry's integrity hash.
  (cd "$download" && npm pack --loglevel=error "node-linux-${arch}@${NODE_LTS_VERSION}") >/dev/null || return 1
  tar -xzf "$download"/node-linux-"${arch}"-"${NODE_LTS_VERSION}".tgz -C "$download" || return 1
  if [ "$("$download/package/bin/node" --version 2>/dev/null)" != "v${NODE_LTS_VERSION}" ]; then
    say "the downloaded node does not print v${NODE_LTS_VERSION}" >&2
    return 1
  fi
  rm -f "$download"/*.tgz
  # Move into the cache in one step, so a run killed halfway never leaves a half-filled cache.
  if mkdir -p "$cache" 2>/dev/null && mv -T "$download/package" "$node_dir.tmp.$$" 2>/dev/null; then
    if mv -T "$node_dir.tmp.$$" "$node_dir" 2>/dev/null \
      || { rm -rf "$node_dir" && mv -T "$node_dir.tmp.$$" "$node_dir"; }; then
      echo "$node_dir"
      return 0
    fi
    rm -rf "$node_dir.tmp.$$"
    return 1
  fi
  say "cannot write the cache $cache: using the download for this run only" >&2
  echo "$download/package"
}

started=$SECONDS
node_dir=$(fetch_node) || { fail_step "could not get Node ${NODE_LTS_VERSION} from the npm registry (is it reachable?)"; finish; }

# A clean copy of the checkout: the files git tracks plus new ones it does not ignore, as they are
# in the working tree (so this leg tests the same code as the other), without node_modules.
course="$work/course"
mkdir -p "$course"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
  | tar --null -T - -cf -) | tar -xf - -C "$course" \
  || { fail_step "could not copy the checkout (is it a git repository?)"; finish; }
cd "$course" || { fail_step "no copy of the checkout"; finish; }

# This Node first on PATH: npm, npx, tsx and tap (all "#!/usr/bin/env node") then run on it, and
# node-gyp builds against its headers.
export PATH="$node_dir/bin:$PATH"
export npm_config_nodedir="$node_dir"
if [ "$(node --version)" != "v${NODE_LTS_VERSION}" ]; then
  fail_step "PATH gives $(node --version), not v${NODE_LTS_VERSION}"
  finish
fi
say "node $(node --version), npm $(npm --version), in a clean copy of the checkout ($course)"

say "npm ci (native builds included)"
npm ci --no-audit --no-fund || { fail_step "npm ci"; finish; }

say "typecheck"
npm run --silent typecheck || fail_step "typecheck"

say "audio (PortAudio) tests"
tap_log="$work/tap.log"
npx tap tests/audio-*.test.ts tests/02-echo-portaudio.test.ts 2>&1 | tee "$tap_log"
tap_status=${PIPESTATUS[0]}
# tap's closing summary looks like: # { total: 42, pass: 40, fail: 2 }  (fail omitted when 0)
summary=$(grep -E '^# \{ total: [0-9]+' "$tap_log" | tail -n 1)
tap_pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
tap_fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
tap_skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
if [ -z "$tap_pass" ]; then
  fail_step "the audio tests printed no tap summary"
else
  passed=$((passed + tap_pass))
  failed=$((failed + ${tap_fail:-0}))
  skipped=$((skipped + ${tap_skip:-0}))
  if [ "$tap_status" -ne 0 ] && [ "${tap_fail:-0}" -eq 0 ]; then fail_step "tap exited $tap_status"; fi
fi

# Every stage folder (NN-name) is graded, so a new stage is covered without editing this file;
# a stage folder the grader does not know fails here (the grader exits 2).
# One at a time: some checks have deadlines of a second or two, and CI has 2 cores.
for folder in [0-9][0-9]-*/; do
  stage=${folder%%-*}
  say "grade stage $stage (${folder%/}) on the reference"
  report="$work/grade-$stage.json"
  npm run --silent grade -- --stage "$stage" --json "$report"
  grade_status=$?
  if [ -s "$report" ]; then
    read -r grade_pass grade_total grade_skipped < <(node -e '
      const report = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
      console.log(report.passed, report.total, report.skipped ?? 0);' "$report")
    passed=$((passed + grade_pass))
    failed=$((failed + grade_total - grade_pass - grade_skipped))
    skipped=$((skipped + grade_skipped))
    # The grader exits 3 when nothing failed but a check could not measure here (a SKIP, not a failure).
    if [ "$grade_status" -ne 0 ] && [ "$grade_status" -ne 3 ] && [ $((grade_pass + grade_skipped)) -eq "$grade_total" ]; then
      fail_step "grade of stage $stage exited $grade_status"
    fi
  else
    fail_step "grade of stage $stage wrote no report (exit $grade_status)"
  fi
done

say "took $((SECONDS - started)) s"
finish
