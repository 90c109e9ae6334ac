using System.Globalization;
using System.Text;

namespace Offload.Agent.Tools;

/// <summary>
/// Collects a command's output in bounded memory: the first <c>cap</c> bytes, a ring of the last
/// <c>cap</c> bytes, and, once the output outgrows the cap, everything (up to <see cref="SpillLimitBytes"/>)
/// in a file under the spill directory. What the model sees is then the head and the tail around
/// a line that says how much was cut and where the whole output is.
/// </summary>
internal sealed class OutputCapture(string spillDir, int cap) : IAsyncDisposable
{
    public const long SpillLimitBytes = 64L * 1024 * 1024;

    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly byte[] head = new byte[Math.Max(cap, 0)];
    private readonly byte[] ring = new byte[Math.Max(cap, 1)];
    private int headLength;
    private int ringStart;
    private int ringLength;
    private FileStream? spill;
    private long spilled;
    private string? spillError;
    private bool disposed;

    public long TotalBytes { get; private set; }

    public string? SpillPath { get; private set; }

    public async Task WriteAsync(ReadOnlyMemory<byte> data)
    {
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (disposed)
            {
                return;
            }
            TotalBytes += data.Length;
            var toHead = Math.Min(data.Length, head.Length - headLength);
            data.Span[..toHead].CopyTo(head.AsSpan(headLength));
            headLength += toHead;
            var rest = data[toHead..];
            if (rest.IsEmpty)
            {
                return;
            }
            if (spill is null && spillError is null && SpillPath is null)
            {
                OpenSpill();
                await WriteSpillAsync(head.AsMemory(0, headLength)).ConfigureAwait(false);
                await WriteSpillAsync(ring.AsMemory(0, ringLength)).ConfigureAwait(false);
            }
            await WriteSpillAsync(rest).ConfigureAwait(false);
            AppendToRing(rest.Span);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The output as the model sees it: at most <paramref name="maxChars"/> characters.</summary>
    public async Task<(string Text, bool Cut)> RenderAsync(int maxChars)
    {
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (spill is not null)
            {
                await spill.FlushAsync().ConfigureAwait(false);
            }
            var omittedBetween = TotalBytes - headLength - ringLength;
            var tailBytes = RingBytes();
            if (omittedBetween == 0)
            {
                var whole = Encoding.UTF8.GetString([.. head.AsSpan(0, headLength), .. tailBytes]);
                if (whole.Length <= maxChars)
                {
                    DeleteSpill();
                    return (whole, false);
                }
                return (Cut(whole, whole, maxChars), true);
            }
            var skip = 0;
            while (skip < tailBytes.Length && (tailBytes[skip] & 0xC0) == 0x80)
            {
                skip++;
            }
            return (Cut(Encoding.UTF8.GetString(head, 0, headLength), Encoding.UTF8.GetString(tailBytes, skip, tailBytes.Length - skip), maxChars), true);
        }
        finally
        {
            gate.Release();
        }
    }

    private string Cut(string headText, string tailText, int maxChars)
    {
        var marker = Marker(TotalBytes);
        var budget = Math.Max(maxChars - marker.Length, 0);
        var headChars = Math.Min(budget / 2, headText.Length);
        var tailChars = Math.Min(budget - headChars, tailText.Length);
        var shownHead = headText[..headChars];
        var shownTail = tailText[^tailChars..];
        var omitted = TotalBytes - Encoding.UTF8.GetByteCount(shownHead) - Encoding.UTF8.GetByteCount(shownTail);
        var text = shownHead + Marker(Math.Max(omitted, 0)) + shownTail;
        return text.Length <= maxChars ? text : text[..maxChars];
    }

    private string Marker(long omittedBytes)
    {
        var where = SpillPath is null
            ? $"the full output could not be saved ({spillError ?? "no spill file"})"
            : spilled >= SpillLimitBytes
                ? $"the first {SpillLimitBytes / (1024 * 1024)} MB of it are in {SpillPath}"
                : $"all of it is in {SpillPath}";
        return string.Create(CultureInfo.InvariantCulture,
            $"\n\n[… {omittedBytes} bytes of output cut here; the command printed {TotalBytes} bytes in all and {where} …]\n\n");
    }

    private byte[] RingBytes()
    {
        var bytes = new byte[ringLength];
        var firstPart = Math.Min(ringLength, ring.Length - ringStart);
        ring.AsSpan(ringStart, firstPart).CopyTo(bytes);
        ring.AsSpan(0, ringLength - firstPart).CopyTo(bytes.AsSpan(firstPart));
        return bytes;
    }

    private void AppendToRing(ReadOnlySpan<byte> data)
    {
        if (data.Length >= ring.Length)
        {
            data[^ring.Length..].CopyTo(ring);
            ringStart = 0;
            ringLength = ring.Length;
            return;
        }
        foreach (var b in data)
        {
            var end = (ringStart + ringLength) % ring.Length;
            ring[end] = b;
            if (ringLength < ring.Length)
            {
                ringLength++;
            }
            else
            {
                ringStart = (ringStart + 1) % ring.Length;
            }
        }
    }

    private void OpenSpill()
    {
        try
        {
            Directory.CreateDirectory(spillDir);
            var path = Path.Combine(spillDir, $"bash-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..8]}.log");
            spill = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16, useAsync: true);
            SpillPath = path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            spillError = e.Message;
        }
    }

    private async Task WriteSpillAsync(ReadOnlyMemory<byte> data)
    {
        if (spill is null || spilled >= SpillLimitBytes)
        {
            return;
        }
        var part = data[..(int)Math.Min(data.Length, SpillLimitBytes - spilled)];
        try
        {
            await spill.WriteAsync(part).ConfigureAwait(false);
            spilled += part.Length;
        }
        catch (IOException e)
        {
            spillError = e.Message;
            await spill.DisposeAsync().ConfigureAwait(false);
            spill = null;
        }
    }

    private void DeleteSpill()
    {
        if (SpillPath is null)
        {
            return;
        }
        spill?.Dispose();
        spill = null;
        File.Delete(SpillPath);
        SpillPath = null;
    }

    public async ValueTask DisposeAsync()
    {
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            disposed = true;
            if (spill is not null)
            {
                await spill.DisposeAsync().ConfigureAwait(false);
                spill = null;
            }
        }
        finally
        {
            gate.Release();
        }
    }
}
