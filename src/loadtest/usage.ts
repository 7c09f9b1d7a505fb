// The defaults and usage of `audience loadtest`, apart from the command so that `audience --help` loads no autocannon.

export const LOADTEST_DEFAULTS = {
  durationS: 10,
  connections: 32,
  unknownShare: 0.1,
  maxErrors: 0,
  report: "loadtest-report.html",
  path: "/v1/lookup",
} as const;

const D = LOADTEST_DEFAULTS;

export const LOADTEST_USAGE = `  audience loadtest <url> [--duration S] [--connections N] [--rate N] [--ids file.csv] [--unknown 0.1]
                          [--bodies dir] [--max-errors N] [--report path.html] [--path /v1/lookup]
                          [--seed N] [--header 'name: value']...
  loadtest: sends bid requests to a running service (autocannon) and reports throughput, latency and what the
    answers said (segments, degraded, withheld, warnings, errors); writes an HTML report.
    --duration S          seconds to run (default ${D.durationS})
    --connections N       connections, each with one request in flight at most (default ${D.connections})
    --rate N              requests per second on a fixed schedule, latency counted from when each was due
                          (default: flat out, each connection sending again as soon as it is answered)
    --ids file.csv        known IDs, lines type,id (bu, ifa, xu:<exchange>, eid:<source>); each lands where a
                          template carries its kind (default: random IDs only, so every user is unknown)
    --unknown S           with --ids, the share of requests carrying only IDs never seen (default ${D.unknownShare})
    --bodies dir          bid request templates, one *.json each (default: the package's openrtb-samples/)
    --max-errors N        most non-2xx answers and errors for exit code 0 (default ${D.maxErrors})
    --report path.html    the report (default ${D.report} in the current directory)
    --path P              path and query of every request (default: the URL's path, else ${D.path})
    --seed N              the random IDs and draws; the same seed sends the same requests (default: random,
                          printed)
    --header 'name: value'  an extra request header, e.g. 'authorization: Bearer <key>' (repeatable)
    Exit codes: 0 at most --max-errors non-2xx answers and errors; 1 more; 2 usage, file error or target
    unreachable.`;
