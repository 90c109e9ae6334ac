using Offload.Config;

namespace Offload.Tests.Config;

/// <summary>
/// A config file names only what it changes; everything it leaves out keeps its default. The config is read with JSON
/// code generated at build time (the daemon is Native AOT), which once set every property a file left out to null or 0.
/// </summary>
public sealed class ConfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("offload-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void PartialFile_KeepsTheDefaultsOfWhatItLeavesOut_AtEveryLevel()
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, """
            {
              // comments and trailing commas are allowed
              "maxParallel": 2,
              "limits": { "maxTurns": 5 },
              "models": { "retry": { "maxTries": 3 }, "prices": { "m": { "input": 1, "output": 2, "cacheRead": 0.1, "cacheWrite": 1.25 } } },
              "engines": { "claude": { "path": "/opt/claude" } },
            }
            """);

        var config = OffloadConfig.Load(path);
        var defaults = new OffloadConfig();

        Assert.Equal(2, config.MaxParallel);
        Assert.Equal(defaults.DefaultEngine, config.DefaultEngine);
        Assert.Equal(5, config.Limits.MaxTurns);
        Assert.Equal(defaults.Limits with { MaxTurns = 5 }, config.Limits);
        Assert.Equal(3, config.Models.Retry.MaxTries);
        Assert.Equal(defaults.Models.Retry with { MaxTries = 3 }, config.Models.Retry);
        Assert.Equal(defaults.Models.DefaultModel, config.Models.DefaultModel);
        Assert.Equal(defaults.Models.MaxOutputTokens, config.Models.MaxOutputTokens);
        Assert.Equal(new Offload.Models.ModelPrice(1m, 2m, 0.1m, 1.25m), config.Models.Prices["m"]);
        Assert.Equal("/opt/claude", config.Engines.Claude.Path);
        Assert.Equal(defaults.Engines.Claude.PermissionMode, config.Engines.Claude.PermissionMode);
        Assert.Empty(config.Engines.Claude.Args);
        Assert.Equal(defaults.Notifications.Desktop, config.Notifications.Desktop);
        Assert.Empty(config.Permissions.Allow);
        Assert.NotNull(config.Sandbox);
    }
}
