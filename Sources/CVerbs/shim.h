#ifndef COHORT_CVERBS_SHIM_H
#define COHORT_CVERBS_SHIM_H
#include <infiniband/verbs.h>

// ibv_query_port is a macro in verbs.h; Swift needs a function.
static inline int cverbs_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attributes) {
    return ibv_query_port(context, port, attributes);
}

// The number of ports of an open device, or -1.
static inline int cverbs_port_count(struct ibv_context *context) {
    struct ibv_device_attr attributes;
    if (ibv_query_device(context, &attributes)) return -1;
    return attributes.phys_port_cnt;
}

static inline int cverbs_port_is_active(const struct ibv_port_attr *attributes) {
    return attributes->state == IBV_PORT_ACTIVE;
}
#endif
