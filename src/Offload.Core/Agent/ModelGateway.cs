using Microsoft.Extensions.AI;
using Offload.Models;
using Offload.Protocol;

namespace Offload.Agent;

/// <summary>The daemon's door to models: checks a model name up front, makes clients, prices usage.</summary>
public sealed class ModelGateway(ModelSettings settings, Func<string, string?> getEnv) : IAsyncDisposable
{
    private readonly SimulatorHost _simulator = new();
    private ChatClientFactory Factory => field ??= new ChatClientFactory(_simulator);

    public ModelSettings Settings { get; } = settings;

    /// <summary>
    /// The model a new task will use: the one asked for, else the configured default. Refused
    /// up front (malformed, unknown provider, missing key) so <c>offload run</c> fails at once.
    /// </summary>
    public string Resolve(string? model, string engine)
    {
        if (engine == "claude")
        {
            return Engines.Claude.ClaudeModel.Resolve(model, Settings);
        }

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
                    "set ANTHROPIC_API_KEY, or choose one with --model provider:model (e.g. --model openai:gpt-5 with OPENAI_API_KEY), " +
                    "or try Offload offline with --model sim:demo");
            }
        }

        return parsed.ToString();
    }

    public IChatClient Create(string model, Func<ModelRetried, Task> onRetry) =>
        Factory.Create(ModelRef.Parse(model, Settings), Settings, getEnv,
            retry => onRetry(new ModelRetried(retry.Try, (int)retry.Delay.TotalMilliseconds, retry.Reason)));

    public UsageRecorded Usage(string model, UsageDetails? details)
    {
        var usage = ModelUsage.From(details);
        return new UsageRecorded(model, usage.Input, usage.Output, usage.CacheRead, usage.CacheWrite, Settings.Cost(model, usage));
    }

    /// <summary>The in-process Simulator behind <c>sim:</c> models, for engines that call it over HTTP themselves.</summary>
    public Task<Uri> SimulatorUrlAsync(CancellationToken cancellationToken = default) => _simulator.GetBaseUrlAsync(cancellationToken);

    public ValueTask DisposeAsync() => _simulator.DisposeAsync();
}
