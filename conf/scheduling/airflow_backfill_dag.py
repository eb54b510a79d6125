"""Airflow DAG example: re-process one UTC day of mParticle dumps per DAG run with spark-submit.

Each run calls ``jobs/backfill.py --from-date {{ ds }} --to-date {{ ds }}``: only that day's
events (by event time) are converted and sent, and date folders outside the day (minus
``date_folder_lookback_days``) are not even listed. Runs are idempotent: the ``results`` ledger
keeps delivered events from being sent again, so clearing a run, an Airflow retry, or
``airflow dags backfill -s 2026-09-01 -e 2026-10-31 mparticle_meta_backfill`` re-processes days
safely. Exit codes map to task states: 0 success; 1 (events failed after retries) and 3 (token
rejected) fail the task; 2 (bad settings) fails it too and a retry will not help.

Honest status: written for Airflow 2.4+ with apache-airflow-providers-apache-spark; NOT run here
(no Airflow on the development machine). What was tested is the command it builds: the same
spark-submit options, ``jobs/backfill.py`` entry file and the wheel under a ``.zip`` name, on a
``local-cluster[2,1,1024]`` master (tests/test_spark_submit.py, which also checks that
APPLICATION_ARGS below parse and validate against conf/cluster.yaml). This file is not imported
by the tests; copy it into your DAGs folder and adjust RELEASE, the connection and the paths.
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

#: One release of the job on the Airflow worker that runs spark-submit (client deploy mode):
#: jobs/backfill.py, conf/cluster.yaml and the wheel copied under a .zip name (--py-files puts
#: .zip files on the executors' path but ignores .whl files).
RELEASE = "/opt/mparticle-meta-backfill/0.1.0"

#: The job's arguments; {{ ds }} is the run's logical date (UTC), the day it re-processes.
APPLICATION_ARGS = [
    "--config", f"{RELEASE}/conf/cluster.yaml",
    "--from-date", "{{ ds }}",
    "--to-date", "{{ ds }}",
]

#: Launcher settings: Delta Lake on, speculation off (speculative copies of upload tasks would
#: send events twice; the job refuses to upload with it on). The master comes from the
#: connection (conn_id), never from the job.
SPARK_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.speculation": "false",
}

with DAG(
    dag_id="mparticle_meta_backfill",
    schedule="@daily",
    start_date=dt.datetime(2026, 9, 1, tzinfo=dt.UTC),
    catchup=True,  # one run per past day since start_date: the whole range, day by day
    # Runs share the payloads table and the ledger: one at a time. Days older than
    # mapping.max_event_age_days (62) before the run's wall clock are skipped as too old.
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=30)},
    tags=["meta", "mparticle", "backfill"],
) as dag:
    SparkSubmitOperator(
        task_id="backfill_day",
        conn_id="spark_default",  # the cluster: yarn, k8s://..., spark://...
        application=f"{RELEASE}/jobs/backfill.py",
        py_files=f"{RELEASE}/mparticle_meta_backfill-0.1.0-py3-none-any.zip",
        packages="io.delta:delta-spark_4.2_2.13:4.4.0",
        conf=SPARK_CONF,
        application_args=APPLICATION_ARGS,
        name="mparticle-meta-backfill-{{ ds }}",
        # The access token: conf/cluster.yaml reads upload.token_file, a secret mounted on this
        # worker. Nothing secret is templated here (rendered templates are shown in the UI).
    )
