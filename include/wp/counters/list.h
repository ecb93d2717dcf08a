/*
 * Every module's counter rows, in one list. Included with WP_CTR defined by
 * wp/counters.h (the enum) and dp/obs/counters.c (the names). One line per
 * module .def file.
 */
#include "wp/counters/port.def"
#include "wp/counters/net.def"
#include "wp/counters/tcp.def"
#include "wp/counters/tls.def"
#include "wp/counters/http.def"
#include "wp/counters/l7.def"
#include "wp/counters/cbreak.def"
#include "wp/counters/outlier.def"
#include "wp/counters/authz.def"
#include "wp/counters/fault.def"
#include "wp/counters/h2proxy.def"
#include "wp/counters/kube.def"
#include "wp/counters/ca.def"
#include "wp/counters/hbone.def"
#include "wp/counters/cp.def"
#include "wp/counters/worker.def"
#include "wp/counters/tunnel.def"
#include "wp/counters/metrics.def"
#include "wp/counters/tracing.def"
