package backfill.spark;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.Aggregator;
import org.apache.spark.sql.functions;

/**
 * An aggregate that keeps its non-null input strings, joined by newlines, while they stay within
 * a number of strings and of UTF-8 bytes; its result is null once either bound is passed (the
 * caller then finds the rows another way). Every buffer, on an executor or the driver, stays
 * within the bounds. The order of the strings is not kept. The inputs must not hold a newline.
 */
public final class BoundedCollect extends Aggregator<String, BoundedCollect.Buffer, String> {
    private static final long serialVersionUID = 1L;

    /** The kept strings and their bytes, or the mark that a bound was passed (then empty). */
    public static final class Buffer implements Serializable {
        private static final long serialVersionUID = 1L;
        public ArrayList<String> rows = new ArrayList<>();
        public long bytes;
        public boolean overflow;
    }

    private final int maxRows;
    private final long maxBytes;

    public BoundedCollect(int maxRows, long maxBytes) {
        this.maxRows = maxRows;
        this.maxBytes = maxBytes;
    }

    /** Registers the aggregate as the SQL function {@code name} of {@code spark}. */
    public static void register(SparkSession spark, String name, int maxRows, long maxBytes) {
        spark.udf().register(name,
                functions.udaf(new BoundedCollect(maxRows, maxBytes), Encoders.STRING()));
    }

    @Override
    public Buffer zero() {
        return new Buffer();
    }

    @Override
    public Buffer reduce(Buffer buffer, String row) {
        if (row == null || buffer.overflow) {
            return buffer;
        }
        add(buffer, List.of(row), row.getBytes(StandardCharsets.UTF_8).length);
        return buffer;
    }

    @Override
    public Buffer merge(Buffer left, Buffer right) {
        if (left.overflow || right.overflow) {
            overflow(left);
        } else {
            add(left, right.rows, right.bytes);
        }
        return left;
    }

    private void add(Buffer buffer, List<String> rows, long bytes) {
        if (buffer.rows.size() + rows.size() > maxRows || buffer.bytes + bytes > maxBytes) {
            overflow(buffer);
            return;
        }
        buffer.rows.addAll(rows);
        buffer.bytes += bytes;
    }

    private static void overflow(Buffer buffer) {
        buffer.overflow = true;
        buffer.rows = new ArrayList<>();
        buffer.bytes = 0;
    }

    @Override
    public String finish(Buffer buffer) {
        return buffer.overflow ? null : String.join("\n", buffer.rows);
    }

    @Override
    public Encoder<Buffer> bufferEncoder() {
        return Encoders.javaSerialization(Buffer.class);
    }

    @Override
    public Encoder<String> outputEncoder() {
        return Encoders.STRING();
    }
}
