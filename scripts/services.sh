#!/usr/bin/env bash
# DataFlow test services: Kafka 4.3.1 (KRaft), Cassandra 5.0.9, PostgreSQL 15, Redis 7.
#
#   scripts/services.sh up [kafka|cassandra|postgres|redis|prometheus|chromium ...]   start (default: all), print KEY=VALUE
#   scripts/services.sh down [service ...]                         stop what this script started
#   scripts/services.sh status [service ...]                       running/stopped, address, managed/external
#   scripts/services.sh logs [-f] [-n LINES] [service ...]         show (or follow) a service's log
#
# Kafka and Cassandra run from Maven Central jars (fetched once into a cache outside
# git) on JDK 17, as detached processes that outlive the caller. PostgreSQL and Redis
# are used where they already answer, else started from Debian's packages. The
# Prometheus binary (remote-write test) and Debian's chromium (console browser test)
# are installed when missing; nothing runs for them until a test starts them.
# Only the KEY=VALUE lines go to stdout; progress goes to stderr, so
#   set -a; eval "$(scripts/services.sh up)"; set +a
# works. See docs/services.md.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
PROBE="$SCRIPT_DIR/services-probe.mjs"

CACHE="${DATAFLOW_SERVICES_HOME:-${HOME:-$(cd ~ && pwd)}/.cache/dataflow/services}"

KAFKA_COORDS="org.apache.kafka:kafka_2.13:4.3.1 org.apache.logging.log4j:log4j-slf4j-impl:2.25.4"
CASSANDRA_COORDS="org.apache.cassandra:cassandra-all:5.0.9"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${DATAFLOW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${DATAFLOW_KAFKA_CONTROLLER_PORT:-19093}"
CASSANDRA_HOST=127.0.0.1
CASSANDRA_PORT="${DATAFLOW_CASSANDRA_PORT:-19042}"
CASSANDRA_STORAGE_PORT="${DATAFLOW_CASSANDRA_STORAGE_PORT:-17000}"
CASSANDRA_SSL_STORAGE_PORT="${DATAFLOW_CASSANDRA_SSL_STORAGE_PORT:-17001}"
CASSANDRA_DC=datacenter1
POSTGRES_HOST=127.0.0.1
POSTGRES_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT="${DATAFLOW_REDIS_PORT:-6379}"

KAFKA_TIMEOUT="${DATAFLOW_KAFKA_TIMEOUT:-90}"
CASSANDRA_TIMEOUT="${DATAFLOW_CASSANDRA_TIMEOUT:-180}"
EXTERNAL_TIMEOUT="${DATAFLOW_EXTERNAL_TIMEOUT:-15}"
STOP_TIMEOUT=30
KAFKA_HEAP="${DATAFLOW_KAFKA_HEAP:--Xms128m -Xmx512m}"
CASSANDRA_HEAP="${DATAFLOW_CASSANDRA_HEAP:--Xms256m -Xmx512m}"

DEFAULT_KAFKA_BROKERS="$KAFKA_HOST:$KAFKA_PORT"
DEFAULT_CASSANDRA_CONTACT_POINTS="$CASSANDRA_HOST:$CASSANDRA_PORT"
DEFAULT_POSTGRES_URL="postgres://postgres@$POSTGRES_HOST:$POSTGRES_PORT/postgres"
DEFAULT_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"

# Connection settings the caller already set: such a service is only probed, never
# started -- unless the value is exactly what this script would print (for example
# exported by an earlier `up` in the same CI job), then it is handled as ours.
USER_KAFKA_BROKERS="${DATAFLOW_KAFKA_BROKERS:-}"
USER_CASSANDRA_CONTACT_POINTS="${DATAFLOW_CASSANDRA_CONTACT_POINTS:-}"
USER_CASSANDRA_LOCAL_DC="${DATAFLOW_CASSANDRA_LOCAL_DC:-}"
USER_POSTGRES_URL="${DATAFLOW_POSTGRES_URL:-}"
USER_REDIS_URL="${DATAFLOW_REDIS_URL:-}"
[[ $USER_KAFKA_BROKERS == "$DEFAULT_KAFKA_BROKERS" ]] && USER_KAFKA_BROKERS=""
[[ $USER_CASSANDRA_CONTACT_POINTS == "$DEFAULT_CASSANDRA_CONTACT_POINTS" ]] && USER_CASSANDRA_CONTACT_POINTS=""
[[ $USER_POSTGRES_URL == "$DEFAULT_POSTGRES_URL" ]] && USER_POSTGRES_URL=""
[[ $USER_REDIS_URL == "$DEFAULT_REDIS_URL" ]] && USER_REDIS_URL=""

ALL_SERVICES=(kafka cassandra postgres redis prometheus chromium)

# ------------------------------------------------------------------ helpers
log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { # start_ms -> "4.2 s"
  local ms=$(($(now_ms) - $1))
  printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

need_node() {
  command -v node >/dev/null 2>&1 || die "node is required (readiness probes: $PROBE)"
}

# probe KIND TARGET [extra probe args...]: 0 when the service answers its protocol
probe() {
  local kind=$1 target=$2
  shift 2
  node "$PROBE" "$kind" "$target" "$@"
}

# Is PID a live (non-zombie) process started by this script for SVC from this cache?
is_ours() {
  local pid=$1 svc=$2 cmd state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]] || return 1
  if [[ $svc == redis ]]; then
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server ]]
    return
  fi
  cmd=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  grep -qxF -- "-Ddataflow.service=$svc" <<<"$cmd" && grep -qxF -- "-Ddataflow.services.home=$CACHE" <<<"$cmd"
}

# pid of our running SVC process, or empty
our_pid() {
  local svc=$1 pid
  pid=$(cat "$CACHE/$svc/pid" 2>/dev/null || true)
  if [[ -n $pid ]] && is_ours "$pid" "$svc"; then echo "$pid"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

rss_of() { awk '/^VmRSS/ {printf "%d MB", $2/1024}' "/proc/$1/status" 2>/dev/null || true; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    log "needs root (or password-less sudo): $*"
    return 1
  fi
}

# print the last lines of a service's logs to stderr
show_log_tail() {
  local svc=$1 f
  for f in "$CACHE/$svc/console.log" "$CACHE/$svc/$svc.log"; do
    [[ -s $f ]] || continue
    printf -- '----- last 60 lines of %s -----\n' "$f" >&2
    tail -n 60 "$f" >&2
  done
  printf -- '----- end of %s logs -----\n' "$svc" >&2
}

# ------------------------------------------------------------------ JDK 17
JAVA_HOME_17=""
JAVA17=""
jdk_major() { sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null; }
find_jdk17() {
  [[ -n $JAVA17 ]] && return 0
  local h cands=()
  if [[ -n ${DATAFLOW_JAVA_HOME:-} ]]; then
    [[ -x $DATAFLOW_JAVA_HOME/bin/java ]] || die "DATAFLOW_JAVA_HOME=$DATAFLOW_JAVA_HOME has no bin/java"
    JAVA_HOME_17=$(readlink -f "$DATAFLOW_JAVA_HOME")
    JAVA17="$JAVA_HOME_17/bin/java"
    [[ $(jdk_major "$JAVA_HOME_17") == 17 ]] || log "warning: DATAFLOW_JAVA_HOME is not a JDK 17 (Cassandra 5.0 needs 11 or 17)"
    return 0
  fi
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    cands+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  for h in /usr/lib/jvm/*17* /usr/lib/jvm/*; do [[ -d $h ]] && cands+=("$h"); done
  for h in "${cands[@]}"; do
    if [[ -x $h/bin/java && $(jdk_major "$h") == 17 ]]; then
      JAVA_HOME_17=$(readlink -f "$h")
      JAVA17="$JAVA_HOME_17/bin/java"
      return 0
    fi
  done
  die "no JDK 17 found (looked at JAVA_HOME, java on PATH, /usr/lib/jvm); install openjdk-17-jdk-headless or set DATAFLOW_JAVA_HOME"
}

# ------------------------------------------------------------------ jars from Maven Central
coords_of() { if [[ $1 == kafka ]]; then echo "$KAFKA_COORDS"; else echo "$CASSANDRA_COORDS"; fi; }

resolve_jars() {
  local svc=$1 d="$CACHE/$1" coords c g a v deps="" t0
  coords=$(coords_of "$svc")
  if [[ -f $d/lib/.resolved && $(cat "$d/lib/.resolved") == "$coords" ]]; then return 0; fi
  command -v mvn >/dev/null 2>&1 || die "$svc: Maven (mvn) is needed once to fetch the jars (apt-get install maven)"
  mkdir -p "$d" "$CACHE/m2"
  # One Maven at a time on the shared local repository.
  exec 8>"$CACHE/m2.lock"
  flock 8
  if [[ -f $d/lib/.resolved && $(cat "$d/lib/.resolved") == "$coords" ]]; then exec 8>&-; return 0; fi
  t0=$(now_ms)
  log "$svc: fetching jars from Maven Central ($coords) -- one time"
  for c in $coords; do
    IFS=: read -r g a v <<<"$c"
    deps+="    <dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>
"
  done
  cat >"$d/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- generated by scripts/services.sh: the runtime class path of $svc -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>dataflow.services</groupId>
  <artifactId>$svc-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$deps  </dependencies>
</project>
EOF
  rm -rf "$d/lib.tmp"
  if ! JAVA_HOME="$JAVA_HOME_17" mvn -q -B -Dmaven.repo.local="$CACHE/m2" -f "$d/pom.xml" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" -DoutputDirectory="$d/lib.tmp" -DincludeScope=runtime \
    >"$d/mvn.log" 2>&1; then
    tail -n 40 "$d/mvn.log" >&2
    die "$svc: Maven could not fetch the jars (see $d/mvn.log)"
  fi
  rm -rf "${d:?}/lib"
  mv "$d/lib.tmp" "$d/lib"
  echo "$coords" >"$d/lib/.resolved"
  exec 8>&-
  log "$svc: $(find "$d/lib" -name '*.jar' | wc -l) jars, $(du -sh "$d/lib" | cut -f1) in $(elapsed "$t0")"
}

# ------------------------------------------------------------------ class data sharing
# A dynamic AppCDS archive of the classes a run loaded: the first run dumps it at exit
# (-XX:ArchiveClassesAtExit), later runs map it (-XX:SharedArchiveFile), which saves
# class loading/verification CPU at start-up. The file name is keyed on the JDK build
# and the jar set, so another JDK or other jars never use a stale archive.
cds_flags() {
  local svc=$1 d="$CACHE/$1" key ver jsa
  ver=$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$JAVA_HOME_17/release" 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '_')
  [[ -n $ver ]] || ver=$(jdk_major "$JAVA_HOME_17")
  key=$({
    echo "$JAVA_HOME_17"
    cat "$JAVA_HOME_17/release" 2>/dev/null
    stat -c '%s %Y' "$JAVA_HOME_17"/lib/server/libjvm.so 2>/dev/null
    (cd "$d/lib" && stat -c '%n %s %Y' -- *.jar)
  } | sha256sum | cut -c1-12)
  mkdir -p "$d/cds"
  jsa="$d/cds/$svc-jdk$ver-$key.jsa"
  # A truncated archive (JVM killed while writing it at exit) would crash every later
  # start with SIGBUS: check it first (-Xshare:on fails instead of ignoring, ~0.1 s).
  if [[ -s $jsa ]] && ! "$JAVA17" -Xshare:on -XX:+VerifySharedSpaces -XX:SharedArchiveFile="$jsa" \
    -XX:-CreateCoredumpOnCrash -XX:ErrorFile=/dev/null -cp "$d/lib/*" -version >/dev/null 2>&1; then
    log "$svc: discarding the unusable class data sharing archive $jsa"
    rm -f "$jsa"
  fi
  if [[ -s $jsa ]]; then
    echo "-XX:SharedArchiveFile=$jsa"
  else
    find "$d/cds" -name '*.jsa' ! -name "$(basename "$jsa")" -delete 2>/dev/null || true
    echo "-XX:ArchiveClassesAtExit=$jsa"
  fi
}

# ------------------------------------------------------------------ detached launch
# launch SVC CMD...: run CMD in its own session (outlives the caller, no SIGHUP, no
# terminal), cwd = the service folder, stdout/stderr to console.log, lock fds closed.
launch() {
  local svc=$1 d="$CACHE/$1" i
  shift
  rm -f "$d/pid" "$d/pid.tmp"
  : >"$d/console.log"
  (
    cd "$d"
    # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner bash
    exec setsid bash -c 'trap "" HUP; echo $$ >"$0.tmp" && mv "$0.tmp" "$0"; exec "$@"' "$d/pid" "$@" \
      </dev/null >>"$d/console.log" 2>&1 8>&- 9>&-
  ) &
  for i in $(seq 1 100); do
    [[ -s $d/pid ]] && return 0
    sleep 0.05
  done
  die "$svc: could not start (no pid file after 5 s)"
}

# wait_ready SVC KIND TARGET TIMEOUT PID T0
wait_ready() {
  local svc=$1 kind=$2 target=$3 timeout=$4 pid=$5 t0=$6 rc=0
  probe "$kind" "$target" --timeout "$timeout" --pid "$pid" --quiet >"$RESULTS/$svc.facts" \
    2>"$CACHE/$svc/probe.err" || rc=$?
  if [[ $rc -eq 0 ]]; then
    log "$svc: ready on $target in $(elapsed "$t0") (pid $pid, RSS $(rss_of "$pid"))"
    return 0
  fi
  show_log_tail "$svc"
  cat "$CACHE/$svc/probe.err" >&2 || true
  if [[ $rc -eq 3 ]]; then
    die "$svc: the process exited during start-up (logs above, $CACHE/$svc/)"
  fi
  die "$svc: not ready on $target after ${timeout} s (pid $pid still running; logs above; 'scripts/services.sh down $svc' to stop it)"
}

# ------------------------------------------------------------------ Kafka
write_kafka_config() {
  local d="$CACHE/kafka"
  cat >"$d/server.properties" <<EOF
# generated by scripts/services.sh -- rewritten at every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.num.partitions=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# the log cleaner allocates this on the heap at start-up (default 128 MiB)
log.cleaner.dedupe.buffer.size=33554432
EOF
  cat >"$d/log4j2.properties" <<EOF
# generated by scripts/services.sh
status = warn
name = dataflow-kafka
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $d/kafka.log
appender.file.filePattern = $d/kafka.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
}

start_kafka() {
  local d="$CACHE/kafka" t0 id cds
  t0=$(now_ms)
  mkdir -p "$d/data"
  write_kafka_config
  local base=("$JAVA17" -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$d/lib/*")
  if [[ ! -s $d/data/meta.properties ]]; then
    # random-uuid: read stdout only (log output on stderr would end up in the id)
    id=$("${base[@]}" kafka.tools.StorageTool random-uuid 2>>"$d/console.log" | tail -n 1)
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid printed '$id'"
    if ! "${base[@]}" kafka.tools.StorageTool format -t "$id" -c "$d/server.properties" --ignore-formatted \
      >>"$d/format.log" 2>&1; then
      cat "$d/format.log" >&2
      die "kafka: formatting $d/data failed"
    fi
    log "kafka: formatted $d/data (cluster id $id)"
  fi
  cds=$(cds_flags kafka)
  # shellcheck disable=SC2086 # heap/extra options are meant to be split into words
  launch kafka "$JAVA17" -Ddataflow.service=kafka -Ddataflow.services.home="$CACHE" \
    $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
    -XX:ErrorFile="$d/hs_err_%p.log" "$cds" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$d/log4j2.properties" ${DATAFLOW_KAFKA_JVM_OPTS:-} \
    -cp "$d/lib/*" kafka.Kafka "$d/server.properties"
  local pid
  pid=$(cat "$d/pid")
  log "kafka: starting (pid $pid, ${cds%%=*})"
  wait_ready kafka kafka "$DEFAULT_KAFKA_BROKERS" "$KAFKA_TIMEOUT" "$pid" "$t0"
}

# ------------------------------------------------------------------ Cassandra
write_cassandra_config() {
  local d="$CACHE/cassandra" data="$CACHE/cassandra/data"
  cat >"$d/cassandra.yaml" <<EOF
# generated by scripts/services.sh -- rewritten at every start
cluster_name: DataFlow Test Cluster
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$CASSANDRA_HOST:$CASSANDRA_STORAGE_PORT"
listen_address: $CASSANDRA_HOST
rpc_address: $CASSANDRA_HOST
storage_port: $CASSANDRA_STORAGE_PORT
ssl_storage_port: $CASSANDRA_SSL_STORAGE_PORT
native_transport_port: $CASSANDRA_PORT
start_native_transport: true
data_file_directories: [$data/data]
commitlog_directory: $data/commitlog
saved_caches_directory: $data/saved_caches
hints_directory: $data/hints
cdc_raw_directory: $data/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
storage_compatibility_mode: NONE
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
auto_snapshot: false
snapshot_before_compaction: false
# a 2-core machine shared with the tests: allow slow answers rather than time out
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 10000ms
counter_write_request_timeout: 10000ms
cas_contention_timeout: 5000ms
truncate_request_timeout: 60000ms
request_timeout: 20000ms
EOF
  cat >"$d/logback.xml" <<EOF
<!-- generated by scripts/services.sh -->
<configuration debug="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>$d/cassandra.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>$d/cassandra.log.%i</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>20MB</maxFileSize>
    </triggeringPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{0} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
  </root>
</configuration>
EOF
}

start_cassandra() {
  local d="$CACHE/cassandra" t0 cds pid
  t0=$(now_ms)
  mkdir -p "$d/data" "$d/triggers"
  write_cassandra_config
  cds=$(cds_flags cassandra)
  # As root, JNA's mlockall would lock the whole heap into RAM (slow start, ~270 MB
  # more RSS): drop CAP_IPC_LOCK so it fails harmlessly (one ENOMEM warning in the log).
  local pre=()
  if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null 2>&1 &&
    setpriv --bounding-set=-ipc_lock -- true 2>/dev/null; then
    pre=(setpriv --bounding-set=-ipc_lock --)
  fi
  # shellcheck disable=SC2086 # heap/extra options are meant to be split into words
  launch cassandra "${pre[@]}" "$JAVA17" -Ddataflow.service=cassandra -Ddataflow.services.home="$CACHE" \
    $CASSANDRA_HEAP -Xss256k -XX:+UseSerialGC -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
    -XX:ErrorFile="$d/hs_err_%p.log" "$cds" \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-opens=java.base/java.io=ALL-UNNAMED \
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true \
    -Dcassandra.config="file://$d/cassandra.yaml" -Dcassandra-foreground=yes \
    -Dcassandra.storagedir="$d/data" -Dcassandra.logdir="$d" \
    -Dlogback.configurationFile="$d/logback.xml" -Dcassandra.triggers_dir="$d/triggers" \
    -Dcassandra.unsafesystem=true -Dcassandra.shutdown_announce_in_ms=0 \
    ${DATAFLOW_CASSANDRA_JVM_OPTS:-} \
    -cp "$d/lib/*" org.apache.cassandra.service.CassandraDaemon
  pid=$(cat "$d/pid")
  log "cassandra: starting (pid $pid, ${cds%%=*})"
  wait_ready cassandra cql "$DEFAULT_CASSANDRA_CONTACT_POINTS" "$CASSANDRA_TIMEOUT" "$pid" "$t0"
}

# ------------------------------------------------------------------ up: one JVM service
# ensure_jvm SVC: writes its KEY=VALUE lines to $RESULTS/SVC.env on success
ensure_jvm() {
  local svc=$1 kind target user_target timeout pid out
  if [[ $svc == kafka ]]; then
    kind=kafka target=$DEFAULT_KAFKA_BROKERS user_target=$USER_KAFKA_BROKERS timeout=$KAFKA_TIMEOUT
  else
    kind=cql target=$DEFAULT_CASSANDRA_CONTACT_POINTS user_target=$USER_CASSANDRA_CONTACT_POINTS timeout=$CASSANDRA_TIMEOUT
  fi
  mkdir -p "$CACHE/$svc"

  if [[ -n $user_target ]]; then
    out=$(probe "$kind" "$user_target" --timeout "$EXTERNAL_TIMEOUT" 2>&1 >"$RESULTS/$svc.facts") ||
      die "$svc: $user_target (from the environment) does not answer: $out"
    log "$svc: using $user_target from the environment (external, not managed)"
    emit_env "$svc" "$user_target"
    return 0
  fi

  pid=$(our_pid "$svc")
  if [[ -n $pid ]]; then
    if probe "$kind" "$target" --quiet >"$RESULTS/$svc.facts" 2>/dev/null; then
      log "$svc: running on $target (managed, pid $pid)"
    else
      log "$svc: pid $pid is up but not answering yet: waiting"
      wait_ready "$svc" "$kind" "$target" "$timeout" "$pid" "$(now_ms)"
    fi
    emit_env "$svc" "$target"
    return 0
  fi
  if [[ -f $CACHE/$svc/pid ]]; then
    log "$svc: pid $(cat "$CACHE/$svc/pid") from the last start is gone: restarting"
    rm -f "$CACHE/$svc/pid"
  fi
  if port_in_use "${target%:*}" "${target##*:}"; then
    if probe "$kind" "$target" --quiet >"$RESULTS/$svc.facts" 2>/dev/null; then
      log "$svc: $target answers but was not started from $CACHE: using it as is (external)"
      emit_env "$svc" "$target"
      return 0
    fi
    die "$svc: port ${target##*:} is taken by another process that does not speak the $svc protocol (choose another port: see docs/services.md)"
  fi
  find_jdk17
  resolve_jars "$svc"
  "start_$svc"
  emit_env "$svc" "$target"
}

emit_env() { # SVC VALUE
  local svc=$1 value=$2 dc
  case $svc in
  kafka) echo "DATAFLOW_KAFKA_BROKERS=$value" >"$RESULTS/kafka.env" ;;
  cassandra)
    dc=$USER_CASSANDRA_LOCAL_DC
    if [[ -z $dc && -f $RESULTS/cassandra.facts ]]; then
      dc=$(sed -n 's/^data_center=//p' "$RESULTS/cassandra.facts" | head -n 1) || true
    fi
    printf 'DATAFLOW_CASSANDRA_CONTACT_POINTS=%s\nDATAFLOW_CASSANDRA_LOCAL_DC=%s\n' "$value" "${dc:-$CASSANDRA_DC}" \
      >"$RESULTS/cassandra.env"
    ;;
  postgres) echo "DATAFLOW_POSTGRES_URL=$value" >"$RESULTS/postgres.env" ;;
  redis) echo "DATAFLOW_REDIS_URL=$value" >"$RESULTS/redis.env" ;;
  prometheus) echo "DATAFLOW_PROMETHEUS_BIN=$value" >"$RESULTS/prometheus.env" ;;
  chromium) echo "DATAFLOW_CHROMIUM=$value" >"$RESULTS/chromium.env" ;;
  esac
}

# ------------------------------------------------------------------ up: the Prometheus binary
# Not a running service: the remote-write test starts its own Prometheus with a
# generated config. The binary comes from Debian's package, extracted (no root
# needed unless the package lists are missing) into $CACHE/prometheus.
PROMETHEUS_BIN="$CACHE/prometheus/usr/bin/prometheus"
ensure_prometheus() {
  local tmp deb
  if [[ -x $PROMETHEUS_BIN ]] && "$PROMETHEUS_BIN" --version >/dev/null 2>&1; then
    emit_env prometheus "$PROMETHEUS_BIN"
    return 0
  fi
  log "prometheus: fetching Debian's package (one time)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/dataflow-prometheus.XXXXXX")
  if ! (cd "$tmp" && apt-get download prometheus >&2 8>&- 9>&-); then
    log "prometheus: apt-get download failed; refreshing the package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 8>&- 9>&- || { rm -rf "$tmp"; die "prometheus: apt-get update failed"; }
    (cd "$tmp" && apt-get download prometheus >&2 8>&- 9>&-) || { rm -rf "$tmp"; die "prometheus: apt-get download prometheus failed"; }
  fi
  deb=$(find "$tmp" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)
  [[ -n $deb ]] || { rm -rf "$tmp"; die "prometheus: no .deb was downloaded"; }
  mkdir -p "$CACHE/prometheus"
  dpkg-deb -x "$deb" "$CACHE/prometheus" || { rm -rf "$tmp"; die "prometheus: dpkg-deb -x $deb failed"; }
  rm -rf "$tmp"
  "$PROMETHEUS_BIN" --version >/dev/null 2>&1 || die "prometheus: $PROMETHEUS_BIN does not run"
  log "prometheus: $("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)"
  emit_env prometheus "$PROMETHEUS_BIN"
}

# ------------------------------------------------------------------ up: PostgreSQL and Redis
pg_cluster_version() { find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1; }

# ------------------------------------------------------------------ up: Chromium
# Not a running service: the node's console test drives Debian's chromium
# (playwright-core with the system executable; no browser download works here).
CHROMIUM_BIN=/usr/bin/chromium
ensure_chromium() {
  if [[ -x $CHROMIUM_BIN ]]; then
    emit_env chromium "$CHROMIUM_BIN"
    return 0
  fi
  install_packages chromium
  [[ -x $CHROMIUM_BIN ]] || die "chromium: $CHROMIUM_BIN is missing after apt-get install chromium"
  log "chromium: $("$CHROMIUM_BIN" --version 2>&1 | head -n 1)"
  emit_env chromium "$CHROMIUM_BIN"
}

install_packages() {
  log "installing $* from Debian packages (one time)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 8>&- 9>&- || die "apt-get update failed"
  # A policy-rc.d that forbids service starts: the script starts what it needs itself.
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy" && added=1
  fi
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 8>&- 9>&- || rc=$?
  [[ $added -eq 1 ]] && as_root rm -f "$policy"
  [[ $rc -eq 0 ]] || die "apt-get install $* failed"
}

start_postgres() {
  local d="$CACHE/postgres" ver installed=${POSTGRES_JUST_INSTALLED:-0} hba t0
  t0=$(now_ms)
  mkdir -p "$d"
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z $(pg_cluster_version) ]]; then
    install_packages postgresql
    installed=1
  fi
  ver=$(pg_cluster_version)
  [[ -n $ver && -d /etc/postgresql/$ver/main ]] || die "postgres: no cluster /etc/postgresql/*/main"
  if [[ $installed -eq 1 ]]; then
    # Tests connect without a password: trust local TCP connections (first match wins).
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    log "postgres: trust auth for 127.0.0.1 added to $hba"
  fi
  local action=start
  if as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main status </dev/null >/dev/null 2>&1 8>&- 9>&-; then
    action=reload # running but not answering on $POSTGRES_HOST:$POSTGRES_PORT yet (or just installed)
  fi
  log "postgres: pg_ctlcluster $ver main $action"
  if ! as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main "$action" </dev/null >"$d/start.log" 2>&1 8>&- 9>&-; then
    cat "$d/start.log" >&2
    tail -n 60 "/var/log/postgresql/postgresql-$ver-main.log" >&2 2>/dev/null || true
    die "postgres: pg_ctlcluster $ver main $action failed"
  fi
  if [[ $action == start || $installed -eq 1 ]]; then
    printf 'version=%s\ninstalled=%s\n' "$ver" "$installed" >"$d/managed"
  fi
  if ! probe postgres "$DEFAULT_POSTGRES_URL" --timeout 60 --quiet >/dev/null 2>"$d/probe.err"; then
    cat "$d/probe.err" >&2
    tail -n 60 "/var/log/postgresql/postgresql-$ver-main.log" >&2 2>/dev/null || true
    die "postgres: not answering on $POSTGRES_HOST:$POSTGRES_PORT after start"
  fi
  if [[ $installed -eq 1 ]]; then
    as_root su postgres -c "psql -q -h $POSTGRES_HOST -p $POSTGRES_PORT -d postgres -c 'CREATE DATABASE test'" \
      >/dev/null 2>&1 8>&- 9>&- || true
  fi
  log "postgres: ready in $(elapsed "$t0") (managed)"
}

start_redis() {
  local d="$CACHE/redis" t0 pid
  t0=$(now_ms)
  mkdir -p "$d"
  command -v redis-server >/dev/null 2>&1 || install_packages redis-server
  rm -f "$d/pid"
  if ! redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$d" --logfile "$d/redis.log" --pidfile "$d/pid" </dev/null >"$d/start.log" 2>&1 8>&- 9>&-; then
    cat "$d/start.log" >&2
    die "redis: redis-server failed to start"
  fi
  touch "$d/managed"
  if ! probe redis "$DEFAULT_REDIS_URL" --timeout 30 --quiet >/dev/null 2>"$d/probe.err"; then
    cat "$d/probe.err" >&2
    show_log_tail redis
    die "redis: not answering on $REDIS_HOST:$REDIS_PORT after start"
  fi
  pid=$(cat "$d/pid" 2>/dev/null || echo '?')
  log "redis: ready in $(elapsed "$t0") (managed, pid $pid)"
}

# ensure_native SVC [probe-result-file]: postgres/redis
ensure_native() {
  local svc=$1 url user_url out
  if [[ $svc == postgres ]]; then url=$DEFAULT_POSTGRES_URL user_url=$USER_POSTGRES_URL; else url=$DEFAULT_REDIS_URL user_url=$USER_REDIS_URL; fi
  if [[ -n $user_url ]]; then
    out=$(probe "$svc" "$user_url" --timeout "$EXTERNAL_TIMEOUT" 2>&1 >"$RESULTS/$svc.facts") ||
      die "$svc: $user_url (from the environment) does not answer: $out"
    log "$svc: using $user_url from the environment (external, not managed)"
    emit_env "$svc" "$user_url"
    return 0
  fi
  if [[ $(cat "$RESULTS/$svc.quick" 2>/dev/null) == 0 ]]; then
    log "$svc: running on ${url#*://} ($(native_owner "$svc"))"
  else
    "start_$svc"
  fi
  if grep -q '^auth=' "$RESULTS/$svc.facts" 2>/dev/null; then
    log "$svc: warning: the server asks for a password and $url has none (configure trust auth for 127.0.0.1)"
  fi
  emit_env "$svc" "$url"
}

native_owner() { # postgres|redis -> managed/external
  if [[ $1 == redis ]]; then
    if [[ -f $CACHE/redis/managed && -n $(our_pid redis) ]]; then echo "managed"; else echo "external"; fi
  else
    if [[ -f $CACHE/postgres/managed ]]; then echo "managed"; else echo "external"; fi
  fi
}

# ------------------------------------------------------------------ commands
parse_services() { # sets SVCS to the selected services (default: all)
  local s
  SVCS=()
  if [[ $# -eq 0 ]]; then SVCS=("${ALL_SERVICES[@]}"); return; fi
  for s in "$@"; do
    case $s in
    kafka | cassandra | postgres | redis | prometheus | chromium) SVCS+=("$s") ;;
    *) die "unknown service '$s' (kafka, cassandra, postgres, redis, prometheus, chromium)" ;;
    esac
  done
}

lock_holders() {
  local fd pid out=""
  for fd in /proc/[0-9]*/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == "$CACHE/services.lock" ]] || continue
    pid=${fd#/proc/}
    pid=${pid%%/*}
    [[ $pid == "$$" || " $out " == *" $pid "* ]] || out+="${out:+ }$pid"
  done
  echo "${out:-?}"
}

take_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/services.lock"
  if ! flock -n 9; then
    log "another services.sh holds $CACHE/services.lock (pids: $(lock_holders)): waiting"
    flock -w 900 9 || die "timed out waiting for $CACHE/services.lock"
  fi
}

cmd_up() {
  local svcs s t0 failed=0
  parse_services "$@"
  svcs=("${SVCS[@]}")
  need_node
  take_lock
  t0=$(now_ms)
  RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/dataflow-services.XXXXXX")
  trap 'rm -rf "$RESULTS"' EXIT

  declare -A bg=()
  for s in "${svcs[@]}"; do
    case $s in
    kafka | cassandra) (ensure_jvm "$s") & bg[$s]=$! ;;
    esac
  done
  # PostgreSQL and Redis: a quick probe of each, in parallel, then start what is missing
  local natives=()
  for s in "${svcs[@]}"; do [[ $s == postgres || $s == redis ]] && natives+=("$s"); done
  if [[ ${#natives[@]} -gt 0 ]]; then
    local qp=() url
    for s in "${natives[@]}"; do
      if [[ $s == postgres ]]; then
        url=$DEFAULT_POSTGRES_URL
        [[ -n $USER_POSTGRES_URL ]] && continue
      else
        url=$DEFAULT_REDIS_URL
        [[ -n $USER_REDIS_URL ]] && continue
      fi
      (
        rc=0
        probe "$s" "$url" --quiet >"$RESULTS/$s.facts" 2>/dev/null || rc=$?
        echo "$rc" >"$RESULTS/$s.quick"
      ) &
      qp+=($!)
    done
    [[ ${#qp[@]} -gt 0 ]] && { wait "${qp[@]}" || true; }
    # missing packages: one apt-get run for both
    local pkgs=()
    for s in "${natives[@]}"; do
      [[ $(cat "$RESULTS/$s.quick" 2>/dev/null) == 1 ]] || continue
      if [[ $s == postgres ]] && ! { command -v pg_ctlcluster >/dev/null 2>&1 && [[ -n $(pg_cluster_version) ]]; }; then
        pkgs+=(postgresql)
      fi
      if [[ $s == redis ]] && ! command -v redis-server >/dev/null 2>&1; then pkgs+=(redis-server); fi
    done
    if [[ ${#pkgs[@]} -gt 0 ]]; then
      if (install_packages "${pkgs[@]}"); then
        [[ " ${pkgs[*]} " == *" postgresql "* ]] && POSTGRES_JUST_INSTALLED=1
      else
        failed=1 natives=()
      fi
    fi
    for s in "${natives[@]}"; do
      (ensure_native "$s") || failed=1
    done
  fi
  for s in "${svcs[@]}"; do
    [[ $s == prometheus ]] && { (ensure_prometheus) || failed=1; }
    [[ $s == chromium ]] && { (ensure_chromium) || failed=1; }
  done
  for s in "${!bg[@]}"; do
    wait "${bg[$s]}" || failed=1
  done
  if [[ $failed -ne 0 ]]; then
    die "up failed (see the messages above)"
  fi
  for s in "${svcs[@]}"; do cat "$RESULTS/$s.env"; done
  log "all requested services are up ($(elapsed "$t0"))"
}

# stop_process SVC PID: SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL
stop_process() {
  local svc=$1 pid=$2 t0 i
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    is_ours "$pid" "$svc" || break
    sleep 0.1
  done
  if is_ours "$pid" "$svc"; then
    log "$svc: still running after ${STOP_TIMEOUT} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      is_ours "$pid" "$svc" || break
      sleep 0.1
    done
  fi
  log "$svc: stopped (pid $pid, $(elapsed "$t0"))"
}

cmd_down() {
  local svcs s pid pids=() ver
  parse_services "$@"
  svcs=("${SVCS[@]}")
  take_lock
  for s in "${svcs[@]}"; do
    case $s in
    prometheus | chromium) ;; # binaries the tests start themselves: nothing runs
    kafka | cassandra | redis)
      pid=$(our_pid "$s")
      if [[ $s == redis && ! -f $CACHE/redis/managed ]]; then pid=""; fi
      if [[ -n $pid ]]; then
        (stop_process "$s" "$pid") &
        pids+=($!)
      elif [[ $s != redis || -f $CACHE/redis/managed ]]; then
        log "$s: not running (managed)"
      else
        log "$s: not started by this script: left alone"
      fi
      ;;
    postgres)
      if [[ -f $CACHE/postgres/managed ]]; then
        ver=$(sed -n 's/^version=//p' "$CACHE/postgres/managed")
        log "postgres: stopping cluster $ver/main"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main stop -m fast </dev/null >&2 8>&- 9>&- ||
          log "postgres: pg_ctlcluster stop failed"
        rm -f "$CACHE/postgres/managed"
      else
        log "postgres: not started by this script: left alone"
      fi
      ;;
    esac
  done
  [[ ${#pids[@]} -gt 0 ]] && wait "${pids[@]}"
  for s in "${svcs[@]}"; do
    case $s in
    kafka | cassandra) rm -f "$CACHE/$s/pid" ;;
    redis) [[ -f $CACHE/redis/managed ]] && rm -f "$CACHE/redis/pid" "$CACHE/redis/managed" ;;
    esac
  done
  return 0
}

cmd_status() {
  local svcs s pid target kind owner state rc=0
  parse_services "$@"
  svcs=("${SVCS[@]}")
  need_node
  for s in "${svcs[@]}"; do
    if [[ $s == prometheus ]]; then
      if [[ -x $PROMETHEUS_BIN ]]; then state=installed; else state=missing rc=3; fi
      printf '%-10s %-8s %-40s %s\n' "$s" "$state" "$PROMETHEUS_BIN" "binary (started by the tests)"
      continue
    fi
    if [[ $s == chromium ]]; then
      if [[ -x $CHROMIUM_BIN ]]; then state=installed; else state=missing rc=3; fi
      printf '%-10s %-8s %-40s %s\n' "$s" "$state" "$CHROMIUM_BIN" "browser (started by the console test)"
      continue
    fi
    case $s in
    kafka) kind=kafka target=${USER_KAFKA_BROKERS:-$DEFAULT_KAFKA_BROKERS} ;;
    cassandra) kind=cql target=${USER_CASSANDRA_CONTACT_POINTS:-$DEFAULT_CASSANDRA_CONTACT_POINTS} ;;
    postgres) kind=postgres target=${USER_POSTGRES_URL:-$DEFAULT_POSTGRES_URL} ;;
    redis) kind=redis target=${USER_REDIS_URL:-$DEFAULT_REDIS_URL} ;;
    esac
    if probe "$kind" "$target" --quiet >/dev/null 2>&1; then state=running; else state=stopped rc=3; fi
    pid=""
    if [[ ($s == kafka && -n $USER_KAFKA_BROKERS) || ($s == cassandra && -n $USER_CASSANDRA_CONTACT_POINTS) ||
      ($s == postgres && -n $USER_POSTGRES_URL) || ($s == redis && -n $USER_REDIS_URL) ]]; then
      owner="external (from the environment)"
    elif [[ $s == postgres ]]; then
      owner=$(native_owner postgres)
    else
      pid=$(our_pid "$s")
      if [[ $s == redis && ! -f $CACHE/redis/managed ]]; then pid=""; fi
      if [[ -n $pid ]]; then
        owner="managed (pid $pid, RSS $(rss_of "$pid"))"
        [[ $state == stopped ]] && state=starting
      elif [[ $state == running ]]; then
        owner=external
      else
        owner=managed
      fi
    fi
    printf '%-10s %-8s %-40s %s\n' "$s" "$state" "${target#*://}" "$owner"
  done
  return $rc
}

cmd_logs() {
  local follow=0 lines=100 svcs s f files=()
  while [[ $# -gt 0 ]]; do
    case $1 in
    -f) follow=1 ;;
    -n) lines=$2; shift ;;
    *) break ;;
    esac
    shift
  done
  parse_services "$@"
  svcs=("${SVCS[@]}")
  for s in "${svcs[@]}"; do
    case $s in
    kafka | cassandra) f="$CACHE/$s/$s.log" ;;
    redis) f="$CACHE/redis/redis.log" ;;
    postgres)
      f="/var/log/postgresql/postgresql-$(pg_cluster_version)-main.log"
      ;;
    esac
    if [[ -r $f ]]; then files+=("$f"); else log "$s: no log at $f"; fi
  done
  [[ ${#files[@]} -gt 0 ]] || return 1
  if [[ $follow -eq 1 ]]; then exec tail -n "$lines" -F "${files[@]}"; fi
  tail -n "$lines" "${files[@]}"
}

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  logs) cmd_logs "$@" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
  esac
}

main "$@"
