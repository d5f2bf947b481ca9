#!/usr/bin/env python3
"""Generates the cgroup fixture trees of ContainersTests: cgroup-hybrid (this project's Debian 12 host:
v1 controllers, cpu and cpuacct apart, unified tree, decoy directories), cgroup-v1 (cpu,cpuacct
together, no cgroup2) and cgroup-v2. Each tree holds a `containers.json` manifest naming its cgroups,
their runtime and their state file, so the tests can compute every expected value from the files.

Run from anywhere: python3 Tests/CollectorsTests/Fixtures/generate-cgroup-fixtures.py
"""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../../Benchmarks"))
from cgroup_tree import *  # noqa: E402,F403


def manifest_entry(path, kind, state=None, netns=None):
    entry = {"id": path, "kind": kind}
    if state:
        entry["state"] = state
    if netns:
        entry["netns"] = netns
    return entry


def docker_state(cid):
    return f"root/var/lib/docker/containers/{cid}/config.v2.json"


def containerd_state(cid, namespace="k8s.io"):
    return f"root/run/containerd/io.containerd.runtime.v2.task/{namespace}/{cid}/config.json"


def storage_state(cid):
    return f"root/var/lib/containers/storage/overlay-containers/{cid}/userdata/config.json"


def containerd_annotations(kind, pod, namespace, uid, name="", image=""):
    annotations = {
        "io.kubernetes.cri.container-type": kind,
        "io.kubernetes.cri.sandbox-id": container_id(uid),
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": namespace,
        "io.kubernetes.cri.sandbox-uid": uid,
    }
    if kind == "container":
        annotations["io.kubernetes.cri.container-name"] = name
        annotations["io.kubernetes.cri.image-name"] = image
    return annotations


def crio_annotations(kind, name, pod, namespace, uid, image, labels_only=False):
    labels = {"io.kubernetes.pod.name": pod, "io.kubernetes.pod.namespace": namespace,
              "io.kubernetes.pod.uid": uid}
    if kind == "container":
        labels["io.kubernetes.container.name"] = name
    annotations = {
        "io.kubernetes.cri-o.ContainerType": kind,
        "io.kubernetes.cri-o.Name": f"k8s_{name or 'POD'}_{pod}_{namespace}_{uid}_0",
        "io.kubernetes.cri-o.ContainerName": f"k8s_{name or 'POD'}_{pod}_{namespace}_{uid}_0",
        "io.kubernetes.cri-o.ImageName": image,
        "io.kubernetes.cri-o.Labels": json.dumps(labels),
    }
    if not labels_only:
        annotations.update(labels)
    return annotations


def hybrid(base):
    layout = "hybrid"
    manifest = []
    write_host(base, MOUNTINFO_HYBRID)
    # Decoys: empty, unmounted directories named like controllers. One holds a fake container, which
    # must not be reported.
    for decoy in ["cpu,cpuacct", "hugetlb", "net_cls,net_prio", "perf_event", "cpuset", "devices", "freezer"]:
        os.makedirs(f"{base}/sys/fs/cgroup/{decoy}", exist_ok=True)
    write(f"{base}/sys/fs/cgroup/cpu,cpuacct/docker/{container_id(1)}/cpuacct.usage", "1\n")
    write_v1_cgroup(base, layout, "/", Figures(0, processes=3), root=True)

    # Docker, cgroupfs driver.
    cid = container_id(1)
    path = f"/docker/{cid}"
    f = Figures(1, processes=2, quota=50000, memory_limit=536870912)
    write_v1_cgroup(base, layout, "/docker", Figures(90))
    write_v1_cgroup(base, layout, path, f)
    write_docker(base, cid, docker_config(cid, "web", "nginx:1.25", {"maintainer": "NGINX"}, f.pids[0]))
    write_process(base, f.pids[0], "net:[4026532001]", [("lo", 1), ("eth0", 1)])
    manifest.append(manifest_entry(path, "docker", docker_state(cid), "net:[4026532001]"))
    manifest.append(manifest_entry("/docker", "other"))

    # Docker, systemd driver, next to services that are not containers.
    cid = container_id(2)
    path = f"/system.slice/docker-{cid}.scope"
    f = Figures(2)
    write_v1_cgroup(base, layout, "/system.slice", Figures(91))
    write_v1_cgroup(base, layout, path, f)
    write_v1_cgroup(base, layout, "/system.slice/docker.service", Figures(92))
    write_v1_cgroup(base, layout, "/system.slice/ssh.service", Figures(93))
    write_docker(base, cid, docker_config(cid, "db", "postgres:16", {}, f.pids[0]))
    write_process(base, f.pids[0], "net:[4026532002]", [("lo", 2), ("eth0", 2), ("veth1234", 2)])
    manifest.append(manifest_entry(path, "docker", docker_state(cid), "net:[4026532002]"))
    manifest.append(manifest_entry("/system.slice", "other"))
    manifest.append(manifest_entry("/system.slice/docker.service", "other"))
    manifest.append(manifest_entry("/system.slice/ssh.service", "other"))

    # containerd under Kubernetes, cgroupfs driver: a burstable pod with its sandbox and one container.
    uid = "6b3e1d52-7d4b-4c4e-9d4f-0e1a2b3c4d5e"
    pod = f"/kubepods/burstable/pod{uid}"
    write_v1_cgroup(base, layout, "/kubepods", Figures(94))
    write_v1_cgroup(base, layout, "/kubepods/burstable", Figures(95))
    write_v1_cgroup(base, layout, pod, Figures(3, processes=2))
    manifest += [manifest_entry("/kubepods", "kubepods"), manifest_entry("/kubepods/burstable", "kubepods"),
                 manifest_entry(pod, "pod")]
    sandbox, app = container_id(uid), container_id(4)
    fs, fa = Figures(31), Figures(4, memory_limit=268435456)
    write_v1_cgroup(base, layout, f"{pod}/{sandbox}", fs)
    write_v1_cgroup(base, layout, f"{pod}/{app}", fa)
    write_containerd(base, sandbox, oci_config(containerd_annotations("sandbox", "frontend-5c7d9", "shop", uid)))
    write_containerd(base, app, oci_config(containerd_annotations(
        "container", "frontend-5c7d9", "shop", uid, "frontend", "registry.example.com/shop/frontend:1.4")))
    write_process(base, fs.pids[0], "net:[4026532003]", [("lo", 3), ("eth0", 3)])
    write_process(base, fa.pids[0], "net:[4026532003]", [("lo", 3), ("eth0", 3)])
    manifest.append(manifest_entry(f"{pod}/{sandbox}", "containerd", containerd_state(sandbox), "net:[4026532003]"))
    manifest.append(manifest_entry(f"{pod}/{app}", "containerd", containerd_state(app)))

    # CRI-O, systemd driver, with its conmon scope (not a container).
    uid = "0f9e8d7c-6b5a-4321-8fed-cba987654321"
    pod = f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
    write_v1_cgroup(base, layout, "/kubepods.slice", Figures(96))
    write_v1_cgroup(base, layout, "/kubepods.slice/kubepods-besteffort.slice", Figures(97))
    write_v1_cgroup(base, layout, pod, Figures(5))
    manifest += [manifest_entry("/kubepods.slice", "kubepods"),
                 manifest_entry("/kubepods.slice/kubepods-besteffort.slice", "kubepods"), manifest_entry(pod, "pod")]
    cid = container_id(6)
    f = Figures(6)
    write_v1_cgroup(base, layout, f"{pod}/crio-{cid}.scope", f)
    write_v1_cgroup(base, layout, f"{pod}/crio-conmon-{cid}.scope", Figures(61))
    write_containers_storage(base, cid, oci_config(crio_annotations(
        "container", "api", "api-7d9f8", "shop", uid, "quay.io/shop/api:2.3", labels_only=True)))
    write_process(base, f.pids[0], "net:[4026532006]", [("eth0", 6)])
    manifest.append(manifest_entry(f"{pod}/crio-{cid}.scope", "crio", storage_state(cid)))
    manifest.append(manifest_entry(f"{pod}/crio-conmon-{cid}.scope", "other"))

    # Podman, rootful, systemd driver, with its conmon scope.
    cid = container_id(7)
    f = Figures(7)
    write_v1_cgroup(base, layout, "/machine.slice", Figures(98))
    write_v1_cgroup(base, layout, f"/machine.slice/libpod-{cid}.scope", f)
    write_v1_cgroup(base, layout, f"/machine.slice/libpod-conmon-{cid}.scope", Figures(71))
    write_containers_storage(base, cid, oci_config({"io.container.manager": "libpod",
                                                    "org.opencontainers.image.stopSignal": "15"}, cid[:12]))
    write_process(base, f.pids[0], "net:[4026532007]", [("lo", 7), ("tap0", 7)])
    manifest.append(manifest_entry(f"/machine.slice/libpod-{cid}.scope", "podman", storage_state(cid),
                                   "net:[4026532007]"))
    manifest += [manifest_entry("/machine.slice", "other"),
                 manifest_entry(f"/machine.slice/libpod-conmon-{cid}.scope", "other")]

    # A state file caught half-written.
    cid = container_id(8)
    write_v1_cgroup(base, layout, f"/docker/{cid}", Figures(8))
    write_docker(base, cid, docker_config(cid, "half", "busybox")[:300])
    manifest.append(manifest_entry(f"/docker/{cid}", "docker", docker_state(cid)))

    # Unexpected keys and a broken line in memory.stat and cpu.stat; no state file at all.
    cid = container_id(9)
    f = Figures(9, quota=20000)
    write_v1_cgroup(base, layout, f"/docker/{cid}", f)
    memory = f"{base}/sys/fs/cgroup/memory/docker/{cid}/memory.stat"
    with open(memory) as stat:
        text = stat.read()
    write(memory, "future_counter 42\n" + text.replace("total_swap ", "total_swap_unknown 7\ntotal_swap ") +
          "garbage line without value\ntotal_rss_huge notanumber\n")
    cpu = f"{base}/sys/fs/cgroup/cpu/docker/{cid}/cpu.stat"
    with open(cpu) as stat:
        write(cpu, stat.read() + "nr_future 5\nbroken\n")
    manifest.append(manifest_entry(f"/docker/{cid}", "docker"))

    # Host network: no network series.
    cid = container_id(10)
    f = Figures(10)
    write_v1_cgroup(base, layout, f"/docker/{cid}", f)
    write_docker(base, cid, docker_config(cid, "hostnet", "alpine:3.19", {}, f.pids[0]))
    write_process(base, f.pids[0], HOST_NETNS, [("lo", 10), ("eth0", 10)])
    manifest.append(manifest_entry(f"/docker/{cid}", "docker", docker_state(cid)))

    # A container whose cgroup vanished between the walk's listing and the reads: an empty directory.
    cid = container_id(11)
    os.makedirs(f"{base}/sys/fs/cgroup/memory/docker/{cid}", exist_ok=True)
    manifest.append(manifest_entry(f"/docker/{cid}", "vanished"))
    return manifest


def v1(base):
    layout = "v1"
    manifest = []
    write_host(base, MOUNTINFO_V1)
    # A device scheduled by BFQ: its figures win over the throttling ones where there are any.
    write_v1_cgroup(base, layout, "/", Figures(200, processes=2), root=True, bfq=True)
    cid = container_id(201)
    f = Figures(201, quota=100000, memory_limit=1073741824)
    write_v1_cgroup(base, layout, "/docker", Figures(290), bfq=True)
    write_v1_cgroup(base, layout, f"/docker/{cid}", f, bfq=True)
    write_docker(base, cid, docker_config(cid, "legacy", "httpd:2.4", {}, f.pids[0]))
    write_process(base, f.pids[0], "net:[4026533001]", [("lo", 201), ("eth0", 201)])
    manifest.append(manifest_entry(f"/docker/{cid}", "docker", docker_state(cid), "net:[4026533001]"))
    manifest.append(manifest_entry("/docker", "other"))

    write_v1_cgroup(base, layout, "/kubepods", Figures(291))
    write_v1_cgroup(base, layout, "/kubepods/besteffort", Figures(292))
    write_v1_cgroup(base, layout, "/kubepods/burstable", Figures(293))
    manifest += [manifest_entry("/kubepods", "kubepods"), manifest_entry("/kubepods/besteffort", "kubepods"),
                 manifest_entry("/kubepods/burstable", "kubepods")]
    # containerd, besteffort and guaranteed pods
    for seed, pod in [(202, "/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555"),
                      (203, "/kubepods/pod8c9f0e1d2c3b4a5968778695a4b3c2d1")]:
        uid = pod.rsplit("pod", 1)[1]
        write_v1_cgroup(base, layout, pod, Figures(seed + 50))
        manifest.append(manifest_entry(pod, "pod"))
        cid = container_id(seed)
        f = Figures(seed)
        write_v1_cgroup(base, layout, f"{pod}/{cid}", f)
        write_containerd(base, cid, oci_config(containerd_annotations(
            "container", f"worker-{seed}", "batch", uid, "worker", "docker.io/library/python:3.12")))
        manifest.append(manifest_entry(f"{pod}/{cid}", "containerd", containerd_state(cid)))
    # CRI-O, cgroupfs driver
    pod = "/kubepods/burstable/podaaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    write_v1_cgroup(base, layout, pod, Figures(254))
    manifest.append(manifest_entry(pod, "pod"))
    cid = container_id(204)
    write_v1_cgroup(base, layout, f"{pod}/crio-{cid}", Figures(204))
    write_containers_storage(base, cid, oci_config(crio_annotations(
        "container", "proxy", "proxy-0", "edge", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "docker.io/envoyproxy/envoy:v1.30")))
    manifest.append(manifest_entry(f"{pod}/crio-{cid}", "crio", storage_state(cid)))
    return manifest


def v2(base):
    manifest = []
    write_host(base, MOUNTINFO_V2)
    write_v2_cgroup(base, "/", Figures(300, processes=2), root=True)

    write_v2_cgroup(base, "/system.slice", Figures(390))
    write_v2_cgroup(base, "/system.slice/cron.service", Figures(391))
    manifest += [manifest_entry("/system.slice", "other"), manifest_entry("/system.slice/cron.service", "other")]
    cid = container_id(301)
    f = Figures(301, quota=200000, memory_limit=1073741824)
    write_v2_cgroup(base, f"/system.slice/docker-{cid}.scope", f)
    write_docker(base, cid, docker_config(cid, "cache", "redis:7", {"com.docker.compose.project": "shop"},
                                          f.pids[0]))
    write_process(base, f.pids[0], "net:[4026534001]", [("lo", 301), ("eth0", 301)])
    manifest.append(manifest_entry(f"/system.slice/docker-{cid}.scope", "docker", docker_state(cid),
                                   "net:[4026534001]"))

    write_v2_cgroup(base, "/kubepods.slice", Figures(392))
    write_v2_cgroup(base, "/kubepods.slice/kubepods-burstable.slice", Figures(393))
    write_v2_cgroup(base, "/kubepods.slice/kubepods-besteffort.slice", Figures(394))
    manifest += [manifest_entry("/kubepods.slice", "kubepods"),
                 manifest_entry("/kubepods.slice/kubepods-burstable.slice", "kubepods"),
                 manifest_entry("/kubepods.slice/kubepods-besteffort.slice", "kubepods")]
    # containerd, burstable pod: sandbox and container
    uid = "3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"
    pod = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid.replace('-', '_')}.slice"
    write_v2_cgroup(base, pod, Figures(302))
    manifest.append(manifest_entry(pod, "pod"))
    sandbox, app = container_id(uid), container_id(303)
    fs, fa = Figures(304), Figures(303, quota=50000, memory_limit=134217728)
    write_v2_cgroup(base, f"{pod}/cri-containerd-{sandbox}.scope", fs)
    write_v2_cgroup(base, f"{pod}/cri-containerd-{app}.scope", fa)
    write_containerd(base, sandbox, oci_config(containerd_annotations("sandbox", "checkout-6f5d", "shop", uid)))
    write_containerd(base, app, oci_config(containerd_annotations(
        "container", "checkout-6f5d", "shop", uid, "checkout", "registry.example.com/shop/checkout:3.1")))
    write_process(base, fs.pids[0], "net:[4026534003]", [("lo", 304), ("eth0", 304)])
    write_process(base, fa.pids[0], "net:[4026534003]", [("lo", 304), ("eth0", 304)])
    manifest.append(manifest_entry(f"{pod}/cri-containerd-{sandbox}.scope", "containerd", containerd_state(sandbox),
                                   "net:[4026534003]"))
    manifest.append(manifest_entry(f"{pod}/cri-containerd-{app}.scope", "containerd", containerd_state(app)))
    # containerd, guaranteed pod whose state file is not readable: id only
    pod = "/kubepods.slice/kubepods-pod7e6d5c4b_3a29_4817_9f6e_5d4c3b2a1908.slice"
    write_v2_cgroup(base, pod, Figures(305))
    manifest.append(manifest_entry(pod, "pod"))
    cid = container_id(306)
    write_v2_cgroup(base, f"{pod}/cri-containerd-{cid}.scope", Figures(306))
    manifest.append(manifest_entry(f"{pod}/cri-containerd-{cid}.scope", "containerd"))
    # CRI-O, besteffort pod: a sandbox without .scope (cri-o#8748), a container and its conmon
    uid = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    pod = f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
    write_v2_cgroup(base, pod, Figures(307))
    manifest.append(manifest_entry(pod, "pod"))
    sandbox, cid = container_id(uid), container_id(308)
    fs, f = Figures(309), Figures(308)
    write_v2_cgroup(base, f"{pod}/crio-{sandbox}", fs)
    write_v2_cgroup(base, f"{pod}/crio-{cid}.scope", f)
    write_v2_cgroup(base, f"{pod}/crio-conmon-{cid}.scope", Figures(310))
    write_containers_storage(base, sandbox, oci_config(crio_annotations(
        "sandbox", "", "search-0", "search", uid, "registry.k8s.io/pause:3.9")))
    write_containers_storage(base, cid, oci_config(crio_annotations(
        "container", "indexer", "search-0", "search", uid, "docker.io/library/elasticsearch:8.13")))
    write_process(base, fs.pids[0], "net:[4026534009]", [("eth0", 309)])
    write_process(base, f.pids[0], "net:[4026534009]", [("eth0", 309)])
    manifest.append(manifest_entry(f"{pod}/crio-{sandbox}", "crio", storage_state(sandbox), "net:[4026534009]"))
    manifest.append(manifest_entry(f"{pod}/crio-{cid}.scope", "crio", storage_state(cid)))
    manifest.append(manifest_entry(f"{pod}/crio-conmon-{cid}.scope", "other"))
    # Podman, rootless: processes in the scope's `container` child; its state file is in the user's home
    user = "/user.slice/user-1000.slice/user@1000.service"
    write_v2_cgroup(base, "/user.slice", Figures(395))
    write_v2_cgroup(base, "/user.slice/user-1000.slice", Figures(396))
    write_v2_cgroup(base, "/user.slice/user-1000.slice/session-3.scope", Figures(397))
    write_v2_cgroup(base, user, Figures(398))
    write_v2_cgroup(base, f"{user}/user.slice", Figures(399))
    cid = container_id(311)
    f = Figures(311)
    write_v2_cgroup(base, f"{user}/user.slice/libpod-{cid}.scope", f, procs_in_child="container")
    write_process(base, f.pids[0], "net:[4026534011]", [("tap0", 311)])
    manifest += [manifest_entry(p, "other") for p in
                 ["/user.slice", "/user.slice/user-1000.slice", "/user.slice/user-1000.slice/session-3.scope", user,
                  f"{user}/user.slice"]]
    manifest.append(manifest_entry(f"{user}/user.slice/libpod-{cid}.scope", "podman", None, "net:[4026534011]"))
    return manifest


for name, build in [("cgroup-hybrid", hybrid), ("cgroup-v1", v1), ("cgroup-v2", v2)]:
    base = os.path.join(HERE, name)
    shutil.rmtree(base, ignore_errors=True)
    entries = build(base)
    write(os.path.join(base, "containers.json"), json.dumps(entries, indent=1) + "\n")
    print(name, len(entries), "cgroups")
