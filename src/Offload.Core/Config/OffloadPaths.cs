namespace Offload.Config;

/// <summary>
/// Where Offload keeps its files. <c>OFFLOAD_HOME</c> moves all of them (tests use it);
/// otherwise the XDG directories are used.
/// </summary>
public sealed record OffloadPaths(string DataDir, string ConfigDir, string RuntimeDir)
{
    public string Database => Path.Combine(DataDir, "offload.db");
    public string WorktreesDir => Path.Combine(DataDir, "worktrees");
    public string OutputsDir => Path.Combine(DataDir, "outputs");
    public string ConfigFile => Path.Combine(ConfigDir, "config.json");
    public string Socket => Path.Combine(RuntimeDir, "offload.sock");
    public string LockFile => Path.Combine(RuntimeDir, "daemon.lock");
    public string DaemonLog => Path.Combine(DataDir, "daemon.log");

    public static OffloadPaths FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        var home = getEnv("OFFLOAD_HOME");
        if (!string.IsNullOrEmpty(home))
        {
            home = Path.GetFullPath(home);
            return new(Path.Combine(home, "data"), Path.Combine(home, "config"), Path.Combine(home, "run"));
        }

        var userHome = getEnv("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var data = getEnv("XDG_DATA_HOME") is { Length: > 0 } d ? d : Path.Combine(userHome, ".local", "share");
        var config = getEnv("XDG_CONFIG_HOME") is { Length: > 0 } c ? c : Path.Combine(userHome, ".config");
        var runtime = getEnv("XDG_RUNTIME_DIR") is { Length: > 0 } r ? r : Path.Combine(Path.GetTempPath(), $"offload-{Environment.UserName}");
        return new(Path.Combine(data, "offload"), Path.Combine(config, "offload"), Path.Combine(runtime, "offload"));
    }
}
