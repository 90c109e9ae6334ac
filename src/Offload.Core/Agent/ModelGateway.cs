using Microsoft.Extensions.AI;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>The daemon's door to models: checks a model name up front, makes clients, prices usage.</summary>
public sealed class ModelGateway(ModelSettings settings, Func<string, string?> getEnv) : IAsyncDisposable
{
    private readonly SimulatorHost _simulator = new();
    private ChatClientFactory Factory => field ??= new ChatClientFactory(_simulator);

    /// <summary>The <c>models</c> settings now: replaced whole when the config file changes (<see cref="Config.LiveConfig"/>).</summary>
    public ModelSettings Settings { get; set; } = settings;

    /// <summary>
    /// The model a new task will use: the one asked for, else the configured default. Refused
    /// up front (malformed, unknown provider, missing key, a Simulator scenario that does not exist or does not
    /// parse) so <c>offload run</c> fails at once and creates nothing. A scenario file's relative path is taken from
    /// <paramref name="workDir"/> (where the user typed the command; the daemon runs from <c>/</c>) and stored whole.
    /// </summary>
    public string Resolve(string? model, string engine, string? workDir = null)
    {
        var resolved = engine switch
        {
            "claude" => Engines.CliModel.Claude.Resolve(model, Settings),
            "codex" => Engines.CliModel.Codex.Resolve(model, Settings),
            _ => ResolveBuiltin(model, engine),
        };
        return resolved.StartsWith("sim:", StringComparison.Ordinal) ? "sim:" + FindScenario(resolved["sim:".Length..], workDir) : resolved;
    }

    private string ResolveBuiltin(string? model, string engine)
    {
        var name = string.IsNullOrWhiteSpace(model) ? Settings.DefaultModel : model.Trim();
        var parsed = ModelRef.Parse(name, Settings);
        if (engine == "builtin")
        {
            try
            {
                using var probe = Factory.Create(parsed, Settings, getEnv);
            }
            catch (ModelConfigException e) when (e.Code == ModelConfigException.MissingKey && string.IsNullOrWhiteSpace(model))
            {
                throw new OffloadException(ErrorCodes.NoModel,
                    $"no model is configured: the default model {name} needs ANTHROPIC_API_KEY, which is not set",
                    "set ANTHROPIC_API_KEY (if the daemon is already running, then `offload daemon stop`: it keeps the environment it started with), or choose one with --model provider:model (e.g. --model openai:gpt-5 with OPENAI_API_KEY), " +
                    "or try Offload offline with --model sim:demo");
            }
        }

        return parsed.ToString();
    }

    /// <summary>The scenario's name as the Simulator will look it up (a file's full path), once it is known to exist and parse.</summary>
    private static string FindScenario(string name, string? workDir)
    {
        if (Simulator.Scenario.IsFileName(name) && workDir is not null)
        {
            name = Path.GetFullPath(name, workDir);
        }

        try
        {
            Simulator.Scenario.Find(name);
            return name;
        }
        catch (Exception e) when (e is KeyNotFoundException or FormatException or IOException or UnauthorizedAccessException)
        {
            throw new OffloadException(ErrorCodes.NoModel, $"sim:{name} is not a Simulator scenario: {char.ToLowerInvariant(e.Message[0])}{e.Message[1..].TrimEnd('.')}; nothing was started",
                $"use a builtin one (--model sim:{string.Join(", sim:", Simulator.Scenario.BuiltinNames)}) or the path of a scenario .json file (docs/simulator.md)");
        }
    }

    /// <summary>Set when the daemon exports telemetry: each client then makes a <c>chat</c> span per call.</summary>
    public Telemetry.OffloadTelemetry? Telemetry { get; init; }

    public IChatClient Create(string model, Func<ModelRetried, Task> onRetry)
    {
        var parsed = ModelRef.Parse(model, Settings);
        var client = Factory.Create(parsed, Settings, getEnv, retry => onRetry(new ModelRetried(retry.Try, (int)retry.Delay.TotalMilliseconds, retry.Reason)));
        return Telemetry?.Instrument(client, parsed) ?? client;
    }

    /// <summary>
    /// The context window of <paramref name="model"/> in tokens: <c>models.contextWindow</c> in the config, else for a
    /// <c>sim:</c> model its scenario's <c>contextWindow</c>, else the catalog (<see cref="ModelCatalog.ContextWindows"/>).
    /// </summary>
    public int ContextWindow(string model)
    {
        if (Settings.ConfiguredContextWindow(model) is { } configured)
        {
            return configured;
        }

        if (ModelRef.TryParse(model, Settings, out var parsed) && parsed!.Provider == "sim")
        {
            try
            {
                if (Simulator.Scenario.Find(parsed.Name).ContextWindow is { } scripted)
                {
                    return scripted;
                }
            }
            catch (Exception e) when (e is KeyNotFoundException or FormatException or IOException or UnauthorizedAccessException)
            {
                // the model call itself will say what is wrong with the scenario
            }
        }

        return ModelSettings.CatalogContextWindow(model);
    }

    public UsageRecorded Usage(string model, UsageDetails? details)
    {
        var usage = ModelUsage.From(details);
        return new UsageRecorded(model, usage.Input, usage.Output, usage.CacheRead, usage.CacheWrite, Settings.Cost(model, usage));
    }

    /// <summary>The in-process Simulator behind <c>sim:</c> models, for engines that call it over HTTP themselves.</summary>
    public Task<Uri> SimulatorUrlAsync(CancellationToken cancellationToken = default) => _simulator.GetBaseUrlAsync(cancellationToken);

    public ValueTask DisposeAsync() => _simulator.DisposeAsync();
}
