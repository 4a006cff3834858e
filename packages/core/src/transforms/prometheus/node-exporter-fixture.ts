/**
 * A deterministic node_exporter-like exposition page (about a thousand
 * samples in the families a real node_exporter serves: Go runtime summaries,
 * per-CPU counters, filesystem and network gauges with several labels, a
 * histogram, NaN / +Inf values, label values with escapes), for tests and the
 * parser benchmark. `seed` varies the numbers, never the shape.
 */

/** A generated page and what it holds. */
export interface GeneratedPage {
  readonly text: string;
  /** Lines in `text` (comments included). */
  readonly lines: number;
  /** Samples a correct parser must return. */
  readonly samples: number;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates one page.
 *
 * @example
 * ```ts
 * const { text, samples } = generateNodeExporterText(7);
 * ```
 */
export function generateNodeExporterText(seed: number): GeneratedPage {
  const next = random(seed);
  const out: string[] = [];
  let samples = 0;
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const sample = (line: string): void => {
    out.push(line);
    samples++;
  };
  const num = (scale: number): string => (next() * scale).toPrecision(10).replace(/\.?0+$/, '');

  family('go_gc_duration_seconds', 'summary', 'A summary of the pause duration of garbage collection cycles.');
  for (const q of ['0', '0.25', '0.5', '0.75', '1']) sample(`go_gc_duration_seconds{quantile="${q}"} ${num(0.001)}`);
  sample(`go_gc_duration_seconds_sum ${num(10)}`);
  sample(`go_gc_duration_seconds_count ${Math.floor(next() * 1e6)}`);
  family('go_goroutines', 'gauge', 'Number of goroutines that currently exist.');
  sample(`go_goroutines ${Math.floor(next() * 100)}`);
  family('go_info', 'gauge', 'Information about the Go environment.');
  sample('go_info{version="go1.22.5"} 1');
  for (const name of ['alloc_bytes', 'alloc_bytes_total', 'buck_hash_sys_bytes', 'frees_total', 'gc_sys_bytes', 'heap_alloc_bytes', 'heap_idle_bytes', 'heap_inuse_bytes', 'heap_objects', 'heap_released_bytes', 'heap_sys_bytes', 'lookups_total', 'mallocs_total', 'mcache_inuse_bytes', 'mspan_inuse_bytes', 'next_gc_bytes', 'other_sys_bytes', 'stack_inuse_bytes', 'sys_bytes']) {
    family(`go_memstats_${name}`, name.endsWith('_total') ? 'counter' : 'gauge', `Number of ${name.replace(/_/g, ' ')}.`);
    sample(`go_memstats_${name} ${num(1e9)}`);
  }
  family('node_cpu_seconds_total', 'counter', 'Seconds the CPUs spent in each mode.');
  for (let cpu = 0; cpu < 16; cpu++) {
    for (const mode of ['idle', 'iowait', 'irq', 'nice', 'softirq', 'steal', 'system', 'user']) sample(`node_cpu_seconds_total{cpu="${cpu}",mode="${mode}"} ${num(1e6)}`);
  }
  const mounts = [
    ['/dev/nvme0n1p1', 'ext4', '/'],
    ['/dev/nvme0n1p2', 'vfat', '/boot/efi'],
    ['tmpfs', 'tmpfs', '/run'],
    ['tmpfs', 'tmpfs', '/run/lock'],
    ['tmpfs', 'tmpfs', '/run/user/1000'],
    ['/dev/sdb1', 'xfs', '/data'],
    // Escaped in the exposition: C:\Volumes\"shared" (backslashes and quotes), and a newline in the mount point.
    ['C:\\\\Volumes\\\\\\"shared\\"', 'ntfs', '/mnt/windows\\nshare'],
  ];
  for (const metric of ['avail_bytes', 'device_error', 'files', 'files_free', 'free_bytes', 'readonly', 'size_bytes']) {
    family(`node_filesystem_${metric}`, 'gauge', `Filesystem ${metric.replace(/_/g, ' ')}.`);
    for (const [device, fstype, mountpoint] of mounts) sample(`node_filesystem_${metric}{device="${device}",fstype="${fstype}",mountpoint="${mountpoint}"} ${num(1e12)}`);
  }
  const devices = ['eth0', 'eth1', 'lo', 'docker0', 'veth1a2b3c', 'wlan0', 'br-5f3e', 'tun0'];
  for (const metric of ['receive_bytes_total', 'receive_drop_total', 'receive_errs_total', 'receive_packets_total', 'transmit_bytes_total', 'transmit_drop_total', 'transmit_errs_total', 'transmit_packets_total', 'receive_multicast_total', 'transmit_colls_total']) {
    family(`node_network_${metric}`, 'counter', `Network device statistic ${metric}.`);
    for (const device of devices) sample(`node_network_${metric}{device="${device}"} ${num(1e12)}`);
  }
  const disks = ['nvme0n1', 'sda', 'sdb', 'dm-0', 'dm-1', 'loop0'];
  for (const metric of ['reads_completed_total', 'writes_completed_total', 'read_bytes_total', 'written_bytes_total', 'io_time_seconds_total', 'io_now', 'read_time_seconds_total', 'write_time_seconds_total']) {
    family(`node_disk_${metric}`, metric.endsWith('_total') ? 'counter' : 'gauge', `Disk statistic ${metric}.`);
    for (const device of disks) sample(`node_disk_${metric}{device="${device}"} ${num(1e9)}`);
  }
  family('node_hwmon_temp_celsius', 'gauge', 'Hardware monitor for temperature (input).');
  for (let chip = 0; chip < 4; chip++) {
    for (let sensor = 1; sensor <= 8; sensor++) sample(`node_hwmon_temp_celsius{chip="platform_coretemp_${chip}",sensor="temp${sensor}"} ${sensor === 8 ? 'NaN' : num(100)}`);
  }
  family('prometheus_http_request_duration_seconds', 'histogram', 'Histogram of latencies for HTTP requests.');
  const les = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'];
  for (const handler of ['/metrics', '/api/v1/query', '/api/v1/query_range', '/-/healthy', '/federate']) {
    let count = 0;
    for (const le of les) {
      count += Math.floor(next() * 100);
      sample(`prometheus_http_request_duration_seconds_bucket{handler="${handler}",le="${le}"} ${count}`);
    }
    sample(`prometheus_http_request_duration_seconds_sum{handler="${handler}"} ${num(1e4)}`);
    sample(`prometheus_http_request_duration_seconds_count{handler="${handler}"} ${count}`);
  }
  family('node_interrupts_total', 'counter', 'Interrupt details.');
  for (let irq = 0; irq < 40; irq++) {
    for (let cpu = 0; cpu < 8; cpu++) sample(`node_interrupts_total{cpu="${cpu}",devices="pci-msi ${irq}",info="edge",type="${irq}"} ${Math.floor(next() * 1e7)}`);
  }
  family('node_scrape_collector_duration_seconds', 'gauge', 'node_exporter: Duration of a collector scrape.');
  for (const c of ['cpu', 'diskstats', 'filesystem', 'hwmon', 'interrupts', 'loadavg', 'meminfo', 'netdev', 'stat', 'time', 'uname', 'vmstat']) sample(`node_scrape_collector_duration_seconds{collector="${c}"} ${num(0.1)}`);
  family('node_load1', 'gauge', '1m load average.');
  sample(`node_load1 ${num(8)}`);
  family('node_boot_time_seconds', 'gauge', 'Node boot time, in unixtime.');
  sample(`node_boot_time_seconds 1.733e+09 ${1_733_300_000_000 + seed}`);
  family('node_memory_MemAvailable_bytes', 'gauge', 'Memory information field MemAvailable_bytes.');
  sample(`node_memory_MemAvailable_bytes ${num(6.4e10)}`);
  family('node_time_seconds', 'gauge', 'System time in seconds since epoch (1970).');
  sample(`node_time_seconds +Inf`);
  return { text: `${out.join('\n')}\n`, lines: out.length, samples };
}
