package backfill.hadoop;

import java.io.IOException;
import java.io.InputStream;

import org.apache.hadoop.io.compress.CompressionInputStream;
import org.apache.hadoop.io.compress.Decompressor;
import org.apache.hadoop.io.compress.GzipCodec;

/**
 * Hadoop's gzip codec (same extension, decompressor and concatenated members) whose
 * decompressed lines are cut to {@code limit + 1} bytes, the limit being the Hadoop setting
 * {@value #LIMIT_KEY}: a reader never holds more than that of one line, and a line it reads
 * longer than the limit was at least that long. Unset or not positive: plain gzip.
 *
 * <p>Takes {@code .gz} when listed in {@code io.compression.codecs}: Hadoop's codec factory
 * adds the listed codecs after the built-in ones, and the last for an extension wins.
 *
 * <p>Hadoop's line reader calls {@code createInputStream(in, pooledDecompressor)}; gzip's
 * {@code createInputStream(in)} takes a pooled decompressor and calls the same method, so both
 * paths are cut.
 */
public class LineGuardGzipCodec extends GzipCodec {
    public static final String LIMIT_KEY = "backfill.line.max.bytes";

    @Override
    public CompressionInputStream createInputStream(InputStream in, Decompressor decompressor)
            throws IOException {
        CompressionInputStream plain = super.createInputStream(in, decompressor);
        long limit = getConf() == null ? -1 : getConf().getLong(LIMIT_KEY, -1);
        return limit > 0 ? new LineGuardInputStream(plain, limit) : plain;
    }
}
