using System.Text.Json;

namespace Offload.Config;

/// <summary>
/// The user's config as the daemon uses it now: read at start, and read again when the file changes (a watcher on its
/// folder, not recursive) or when <c>offload config set</c> asks (<c>POST /v1/config/reload</c>). A file that no longer
/// loads changes nothing: the daemon goes on with what it had and says why. Everything read per use follows at once
/// (<c>maxParallel</c>, limits, notifications, permissions, engines, the sandbox, models: providers, prices, retries);
/// what is set up once at start (telemetry) is named as needing <c>offload daemon stop</c>.
/// </summary>
public sealed class LiveConfig(string path, OffloadConfig initial) : IDisposable
{
    private readonly Lock _gate = new();
    private FileSystemWatcher? _watcher;
    private Timer? _settle;

    /// <summary>How long the file must be left alone before a change seen by the watcher is read.</summary>
    private static readonly TimeSpan SettleTime = TimeSpan.FromMilliseconds(300);
    private string? _text = ReadText(path);

    public string Path { get; } = path;

    public OffloadConfig Current { get; private set; } = initial;

    /// <summary>Called after each change is taken, with the config before and after.</summary>
    public event Action<OffloadConfig, OffloadConfig>? Changed;

    /// <summary>Reads the file again: what changed and what needs a restart; or, when it does not load, why (nothing changed).</summary>
    public ConfigReload Reload()
    {
        lock (_gate)
        {
            var text = ReadText(Path);
            if (text is null || text == _text)
            {
                return new ConfigReload(false, [], null);
            }

            OffloadConfig next;
            try
            {
                next = OffloadConfig.Parse(text, Path);
            }
            catch (ConfigException e)
            {
                return new ConfigReload(false, [], e.Message);
            }

            var before = Current;
            _text = text;
            Current = next;
            Changed?.Invoke(before, next);
            return new ConfigReload(true, NeedsRestart(before, next), null);
        }
    }

    /// <summary>Starts watching the file's folder (made if missing) for edits by hand; <paramref name="onReload"/> hears each outcome.</summary>
    public void Watch(Action<ConfigReload> onReload)
    {
        var folder = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(folder);
        _watcher = new FileSystemWatcher(folder, System.IO.Path.GetFileName(Path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
            IncludeSubdirectories = false,
        };
        // A write by hand arrives as several events (truncate, write, close): the file is read once they have settled,
        // never half-written (an empty file read mid-write would put every default back).
        _settle = new Timer(_ =>
        {
            var outcome = Reload();
            if (outcome.Applied || outcome.Problem is not null)
            {
                onReload(outcome);
            }
        });
        FileSystemEventHandler changed = (_, _) => _settle.Change(SettleTime, Timeout.InfiniteTimeSpan);
        _watcher.Changed += changed;
        _watcher.Created += changed;
        _watcher.Deleted += changed;
        _watcher.Renamed += (_, _) => _settle.Change(SettleTime, Timeout.InfiniteTimeSpan);
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>The sections set up once at the daemon's start, whose change waits for <c>offload daemon stop</c>.</summary>
    private static List<string> NeedsRestart(OffloadConfig before, OffloadConfig after)
    {
        List<string> sections = [];
        if (Json(before.Telemetry) != Json(after.Telemetry))
        {
            sections.Add("telemetry");
        }

        return sections;
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, Protocol.OffloadJson.Info<T>(OffloadConfig.ConfigJson));

    /// <summary>The file's text ("" when there is none); null when it cannot be read now (the next event reads it whole).</summary>
    private static string? ReadText(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _settle?.Dispose();
    }
}

/// <summary>What a reload did: <paramref name="Applied"/> a changed file; the sections that wait for a restart; or why the file was not taken.</summary>
public sealed record ConfigReload(bool Applied, IReadOnlyList<string> NeedsRestart, string? Problem);
