using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Offload.Simulator;

/// <summary>
/// Anthropic prompt caching as the API does it, so a client's cache hit rate is measured, not assumed. A request is
/// read in cache order (tools, system, messages) as a list of blocks; every block with <c>cache_control</c> is a
/// breakpoint. The longest prefix seen before (ending at a breakpoint, or up to 20 blocks before one) is a cache read;
/// what follows it up to the last breakpoint is a cache write; the rest is plain input. Prefixes shorter than the API's
/// minimum (1,024 tokens) are not cached. Entries live 5 minutes from their last use (1 hour with <c>"ttl":"1h"</c>),
/// per model, at most <see cref="Capacity"/> of them. Tokens are counted as <see cref="SimulatorServer.EstimateTokens"/>
/// counts the whole request, on the block's JSON without its <c>cache_control</c>.
/// </summary>
internal sealed class PromptCache(TimeProvider time)
{
    public const int MinimumTokens = 1024;
    public const int Lookback = 20;
    public const int Capacity = 20_000;

    private readonly Dictionary<string, Dictionary<UInt128, Entry>> _byModel = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// The tokens of the request <paramref name="body"/> read from and written to the cache (both 0 when it has no
    /// breakpoint), out of <paramref name="totalTokens"/>; remembers its breakpoints' prefixes for the next requests.
    /// </summary>
    public (int Read, int Write) Account(string model, byte[] body, int totalTokens)
    {
        List<Block> blocks;
        using (var document = JsonDocument.Parse(body))
        {
            blocks = Blocks(document.RootElement);
        }

        var lastBreakpoint = blocks.FindLastIndex(b => b.Ttl is not null);
        if (lastBreakpoint < 0)
        {
            return (0, 0);
        }

        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (!_byModel.TryGetValue(model, out var entries))
            {
                entries = [];
                _byModel[model] = entries;
            }

            var readAt = -1;
            for (var i = 0; i <= lastBreakpoint; i++)
            {
                var nearBreakpoint = blocks.Skip(i).Take(Lookback).Any(b => b.Ttl is not null);
                if (nearBreakpoint && entries.TryGetValue(blocks[i].Prefix, out var entry) && entry.Expires > now)
                {
                    readAt = i;
                }
            }

            var read = readAt < 0 ? 0 : blocks[readAt].Tokens;
            var cached = read;
            for (var i = 0; i <= lastBreakpoint; i++)
            {
                var block = blocks[i];
                if (i == readAt || (block.Ttl is { } ttl && block.Tokens >= MinimumTokens))
                {
                    var lifetime = block.Ttl ?? entries[block.Prefix].Lifetime;
                    entries[block.Prefix] = new Entry(now + lifetime, lifetime);
                    cached = Math.Max(cached, block.Tokens);
                }
            }

            Trim(entries, now);
            read = Math.Min(read, totalTokens);
            return (read, Math.Min(cached - read, totalTokens - read));
        }
    }

    private static void Trim(Dictionary<UInt128, Entry> entries, DateTimeOffset now)
    {
        if (entries.Count <= Capacity)
        {
            return;
        }

        foreach (var (key, entry) in entries.Where(e => e.Value.Expires <= now).ToList())
        {
            entries.Remove(key);
        }

        foreach (var (key, _) in entries.OrderBy(e => e.Value.Expires).Take(entries.Count - Capacity).ToList())
        {
            entries.Remove(key);
        }
    }

    /// <summary>The request's blocks in cache order, each with the hash and tokens of the prefix it ends.</summary>
    private static List<Block> Blocks(JsonElement request)
    {
        List<Block> blocks = [];
        var buffer = new ArrayBufferWriter<byte>();
        var prefix = new byte[32];
        long chars = 0;

        void Add(JsonElement element, string? role, int envelope = 0)
        {
            buffer.ResetWrittenCount();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartArray();
                writer.WriteStringValue(role ?? "");
                WithoutCacheControl(writer, element);
                writer.WriteEndArray();
            }

            // The prefix hash chains the previous prefix with this block: equal hashes, equal prefixes.
            var chained = new byte[32 + buffer.WrittenCount];
            prefix.CopyTo(chained, 0);
            buffer.WrittenSpan.CopyTo(chained.AsSpan(32));
            prefix = SHA256.HashData(chained);
            chars += RawLength(element) + envelope;
            blocks.Add(new Block(
                new UInt128(BitConverter.ToUInt64(prefix, 0), BitConverter.ToUInt64(prefix, 8)),
                SimulatorServer.EstimateTokens((int)Math.Min(chars, int.MaxValue)),
                TtlOf(element)));
        }

        if (request.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            foreach (var tool in tools.EnumerateArray())
            {
                Add(tool, "tool");
            }
        }

        if (request.TryGetProperty("system", out var system))
        {
            foreach (var block in system.ValueKind == JsonValueKind.Array ? [.. system.EnumerateArray()] : new[] { system })
            {
                Add(block, "system");
            }
        }

        if (request.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                var role = message.TryGetProperty("role", out var r) ? r.GetString() : null;
                if (!message.TryGetProperty("content", out var content))
                {
                    continue;
                }

                JsonElement[] parts = content.ValueKind == JsonValueKind.Array ? [.. content.EnumerateArray()] : [content];
                var envelope = Bytes(message) - parts.Sum(Bytes) + 1; // its role and brackets, and the comma after it
                for (var i = 0; i < parts.Length; i++)
                {
                    Add(parts[i], i == 0 ? role : null, i == 0 ? envelope : 0); // a new message starts where its role is
                }
            }
        }

        return blocks;
    }

    private static int Bytes(JsonElement element) => System.Text.Encoding.UTF8.GetByteCount(element.GetRawText());

    /// <summary>The block's length as sent (the request's own escaping), less its <c>"cache_control":{…},</c>.</summary>
    private static int RawLength(JsonElement block)
    {
        var length = Bytes(block);
        return block.ValueKind == JsonValueKind.Object && block.TryGetProperty("cache_control", out var control)
            ? length - Bytes(control) - "\"cache_control\":,".Length
            : length;
    }

    private static TimeSpan? TtlOf(JsonElement block) =>
        block.ValueKind == JsonValueKind.Object && block.TryGetProperty("cache_control", out var control) && control.ValueKind == JsonValueKind.Object
            ? control.TryGetProperty("ttl", out var ttl) && ttl.ValueKind == JsonValueKind.String && ttl.GetString() == "1h"
                ? TimeSpan.FromHours(1)
                : TimeSpan.FromMinutes(5)
            : null;

    private static void WithoutCacheControl(Utf8JsonWriter writer, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            element.WriteTo(writer);
            return;
        }

        writer.WriteStartObject();
        foreach (var property in element.EnumerateObject())
        {
            if (property.NameEquals("cache_control"u8))
            {
                continue;
            }

            property.WriteTo(writer);
        }

        writer.WriteEndObject();
    }

    private sealed record Block(UInt128 Prefix, int Tokens, TimeSpan? Ttl);

    private sealed record Entry(DateTimeOffset Expires, TimeSpan Lifetime);
}
