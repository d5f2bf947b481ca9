#ifndef VIGIL_CSYSTEMD_SHIM_H
#define VIGIL_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// Fixed-arity wrappers of the bpf(2) commands the systemd collector uses to read systemd's IP
// accounting maps (syscall(2) is variadic, which Swift cannot call). Each returns -errno on failure.

/// BPF_PROG_QUERY: the ids of the programs attached directly to the cgroup `cgroup_fd` for
/// `attach_type`; `*count` is the room in `ids` on entry, the number attached on return.
static inline int CSystemd_bpf_prog_query(int cgroup_fd, uint32_t attach_type, uint32_t *ids, uint32_t *count) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t)cgroup_fd;
    attr.query.attach_type = attach_type;
    attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
    attr.query.prog_cnt = *count;
    if (syscall(__NR_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)) < 0) return -errno;
    *count = attr.query.prog_cnt;
    return 0;
}

/// BPF_PROG_GET_FD_BY_ID or BPF_MAP_GET_FD_BY_ID: a descriptor of the program or map `id`.
static inline int CSystemd_bpf_fd_by_id(int map, uint32_t id) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    if (map) attr.map_id = id; else attr.prog_id = id;
    long fd = syscall(__NR_bpf, map ? BPF_MAP_GET_FD_BY_ID : BPF_PROG_GET_FD_BY_ID, &attr, sizeof(attr));
    return fd < 0 ? -errno : (int)fd;
}

/// BPF_OBJ_GET_INFO_BY_FD of a program: its name (16 bytes, NUL-padded) and the ids of its maps;
/// `*count` is the room in `map_ids` on entry, the number of maps on return.
static inline int CSystemd_bpf_prog_maps(int prog_fd, char *name, uint32_t *map_ids, uint32_t *count) {
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    info.nr_map_ids = *count;
    info.map_ids = (uint64_t)(uintptr_t)map_ids;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.info.bpf_fd = (uint32_t)prog_fd;
    attr.info.info_len = sizeof(info);
    attr.info.info = (uint64_t)(uintptr_t)&info;
    if (syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0) return -errno;
    memcpy(name, info.name, sizeof(info.name));
    *count = info.nr_map_ids;
    return 0;
}

/// BPF_OBJ_GET_INFO_BY_FD of a map: whether it is an array of `entries` values of 8 bytes with 4-byte
/// keys (1), another map (0), or -errno.
static inline int CSystemd_bpf_map_is_u64_array(int map_fd, uint32_t entries) {
    struct bpf_map_info info;
    memset(&info, 0, sizeof(info));
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.info.bpf_fd = (uint32_t)map_fd;
    attr.info.info_len = sizeof(info);
    attr.info.info = (uint64_t)(uintptr_t)&info;
    if (syscall(__NR_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0) return -errno;
    return info.type == BPF_MAP_TYPE_ARRAY && info.key_size == 4 && info.value_size == 8
        && info.max_entries == entries;
}

/// BPF_MAP_LOOKUP_ELEM of a 4-byte key and an 8-byte value.
static inline int CSystemd_bpf_map_lookup_u64(int map_fd, uint32_t key, uint64_t *value) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = (uint32_t)map_fd;
    attr.key = (uint64_t)(uintptr_t)&key;
    attr.value = (uint64_t)(uintptr_t)value;
    if (syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)) < 0) return -errno;
    return 0;
}

/// The attach types of systemd's IP firewall and accounting programs.
static const uint32_t CSystemd_bpf_cgroup_inet_ingress = BPF_CGROUP_INET_INGRESS;
static const uint32_t CSystemd_bpf_cgroup_inet_egress = BPF_CGROUP_INET_EGRESS;
#endif
