"""The upload side: ``driver`` (selection, the Spark job, folding into the ledger) runs on the
driver; ``executor`` (one task's partition) runs in the executors, with ``sending`` (the pure
sending core), ``graph_client`` (HTTP) and no Spark SQL or Delta code;
``progress`` on the driver."""
