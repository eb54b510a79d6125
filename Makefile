# Fresh machine: `make demo` runs the job end to end on the bundled sample; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
JARS := .jars
# The job's own JVM classes, built from conf/java: the line guard (Hadoop codec and copy) and the
# bounded collect aggregate of the quarantine rows (jobs/conversion/read.py).
JOB_JAR := $(JARS)/backfill-jvm.jar
JOB_JAVA_SRC := $(wildcard conf/java/backfill/*/*.java)
# The embedded driver's class-data archive (jobs/tools/class_archive.py): a faster JVM start.
# The stamp marks the attempt, so a failed one is not repeated by every make until the jars change.
CLASS_ARCHIVE := $(JARS)/spark-classes.jsa
CLASS_ARCHIVE_STAMP := $(JARS)/.class-archive

.PHONY: setup demo cluster-demo test test-fast benchmark lint typecheck wheel clean

setup: $(VENV)/.installed $(JARS)/.fetched $(JOB_JAR) $(CLASS_ARCHIVE_STAMP)

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[spark,s3,dev]'
	touch $@

# Delta Lake's JVM jars (Spark 4.2 / Scala 2.13) and the Hadoop S3A connector with the AWS SDK
# modules it needs (about 12 MB; not the SDK bundle), from Maven Central via the Maven client.
# A warm Maven cache (~/.m2) makes this a few seconds.
$(JARS)/.fetched: conf/delta-jars.pom.xml conf/s3a-jars.pom.xml
	@command -v mvn >/dev/null 2>&1 || { echo "need the Maven client (mvn) to fetch the jars"; exit 1; }
	rm -rf $(JARS) && mkdir -p $(JARS)
	mvn -q -B -f conf/delta-jars.pom.xml dependency:copy-dependencies \
		-DexcludeTransitive=true -DoutputDirectory=$(abspath $(JARS))
	mvn -q -B -f conf/s3a-jars.pom.xml dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(abspath $(JARS))
	ls $(JARS)/delta-spark_*.jar $(JARS)/delta-storage-*.jar $(JARS)/hadoop-aws-*.jar >/dev/null
	touch $@

# Compiled against PySpark's own jars (javac 17+); rebuilt after a fetch (which empties .jars).
$(JOB_JAR): $(JARS)/.fetched $(VENV)/.installed $(JOB_JAVA_SRC)
	@command -v javac >/dev/null 2>&1 || { echo "need a JDK (javac 17+) to build $@"; exit 1; }
	rm -rf $(JARS)/.classes && mkdir -p $(JARS)/.classes
	javac -nowarn --release 17 -d $(JARS)/.classes \
		-cp "$$($(BIN)/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')/jars/*" \
		$(JOB_JAVA_SRC)
	jar cf $@ -C $(JARS)/.classes .
	rm -rf $(JARS)/.classes

# A dry run of the bundled sample in a driver that writes the classes it loaded as it exits
# (about a minute); rebuilt after a new install or fetch. The job runs without it if this fails.
$(CLASS_ARCHIVE_STAMP): $(JOB_JAR)
	$(BIN)/python -m jobs.tools.class_archive --archive $(CLASS_ARCHIVE) || true
	touch $@

demo: setup
	$(BIN)/python -m jobs.tools.demo

# Moto's S3 server, a Spark standalone master and two workers, the sample dump in a bucket,
# spark-submit of the wheel, the report; everything stopped at the end (about 2 minutes).
cluster-demo: setup wheel
	$(BIN)/python -m jobs.tools.cluster_demo $(ARGS)

# The suite in TEST_WORKERS processes (pytest-xdist), a test file's tests in one of them; the
# slowest tests are listed at the end.
TEST_WORKERS ?= 3
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20

# The inner loop: the unmarked tests (no extra processes, no wheel or venv builds).
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# The benchmark at its default size (21-46 minutes on 2 cores with the host, P6 most of it; ARGS=--quick: 3 minutes).
benchmark: setup
	$(BIN)/python -m jobs.tools.benchmark $(ARGS)

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

# The wheel, plus a .zip copy of it for spark-submit --py-files (PySpark ignores .whl there).
wheel: setup
	rm -rf build
	$(BIN)/pip wheel -q --no-deps -w dist .
	for w in dist/*.whl; do cp "$$w" "$${w%.whl}.zip"; done

clean:
	rm -rf $(VENV) $(JARS) dist build *.egg-info spark-warehouse
