#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (slurmctld + slurmd, munge auth) from the distribution's packages, to
# run the workflow through the Snakemake SLURM executor plugin as a cluster user would. Debian/Ubuntu, as root:
#   benchmarks/cluster/slurm_local.sh start     # install (apt) if needed, write /etc/slurm/slurm.conf, start daemons
#   benchmarks/cluster/slurm_local.sh stop
# Partitions: "cpu" (default) and "gpu" (the same node; GPUs appear as gres only where nvidia devices exist), so the
# profile's partition names resolve. No accounting database: job state is read with squeue (MinJobAge 600 s).
set -euo pipefail
cmd=${1:-start}
node=$(hostname -s)

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
}

if [[ $cmd == stop ]]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge
fi
stop
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
gpus=$(compgen -G "/dev/nvidia[0-9]*" | wc -l || true)
gres=""; gresline=""
if [[ $gpus -gt 0 ]]; then gres="Gres=gpu:${gpus}"; gresline="GresTypes=gpu"; fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=sgmbench
SlurmctldHost=${node}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
${gresline}
NodeName=${node} CPUs=${cpus} RealMemory=${mem} ${gres} State=UNKNOWN
PartitionName=cpu Nodes=${node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${node} Default=NO MaxTime=INFINITE State=UP
CONF
if [[ $gpus -gt 0 ]]; then
  : > /etc/slurm/gres.conf
  for d in /dev/nvidia[0-9]*; do echo "Name=gpu File=$d" >> /etc/slurm/gres.conf; done
fi
[[ -s /etc/munge/munge.key ]] || mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024
chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
su -s /bin/sh munge -c "/usr/sbin/munged --force" 2>/dev/null || /usr/sbin/munged --force
slurmctld
slurmd
for _ in $(seq 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed"; then break; fi
  sleep 1
done
scontrol update NodeName="${node}" State=RESUME 2>/dev/null || true
sinfo
