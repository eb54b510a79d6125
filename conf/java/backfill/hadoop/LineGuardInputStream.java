package backfill.hadoop;

import java.io.IOException;

import org.apache.hadoop.io.compress.CompressionInputStream;

/** A decompressed stream whose lines are cut to {@code limit + 1} bytes ({@link LineCutter}). */
final class LineGuardInputStream extends CompressionInputStream {
    private final CompressionInputStream inner;
    private final LineCutter cutter;
    private final byte[] one = new byte[1];

    LineGuardInputStream(CompressionInputStream inner, long limit) throws IOException {
        super(inner);
        this.inner = inner;
        this.cutter = new LineCutter(limit);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        while (true) { // never 0 for len > 0: Hadoop's LineReader takes 0 for the end
            int n = inner.read(b, off, len);
            if (n < 0) {
                return -1;
            }
            int kept = cutter.cut(b, off, n);
            if (kept > 0) {
                return kept;
            }
        }
    }

    @Override
    public int read() throws IOException {
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public void resetState() throws IOException {
        inner.resetState();
        cutter.reset();
    }

    @Override
    public long getPos() throws IOException {
        return inner.getPos();
    }
}
