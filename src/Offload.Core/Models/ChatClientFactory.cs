using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Offload.Models;

/// <summary>
/// Turns a <see cref="ModelRef"/> into a ready <see cref="IChatClient"/>: Anthropic through <see cref="AnthropicChatClient"/>
/// (with prompt caching), OpenAI-compatible servers through Microsoft.Extensions.AI.OpenAI, <c>sim:</c> through the
/// in-process Simulator, each wrapped in a <see cref="RetryingChatClient"/>. The OpenAI SDK's own retries are off so
/// that one policy, with its <see cref="ModelRetry"/> notices, decides. Configuration problems surface here, before any
/// call, as <see cref="ModelConfigException"/>.
/// </summary>
public sealed class ChatClientFactory(SimulatorHost? simulator = null, TimeProvider? timeProvider = null)
{
    public const string AnthropicDefaultBaseUrl = "https://api.anthropic.com";
    public const string OllamaDefaultBaseUrl = "http://localhost:11434/v1";

    private readonly SimulatorHost _simulator = simulator ?? SimulatorHost.Shared;

    /// <param name="model">Which model, e.g. from <see cref="ModelRef.Parse"/>.</param>
    /// <param name="settings">Providers, retries, output limit.</param>
    /// <param name="getEnv">Reads an environment variable (injected, so tests never touch the real environment).</param>
    /// <param name="onRetry">Told about each retry before its wait starts.</param>
    public IChatClient Create(
        ModelRef model, ModelSettings settings, Func<string, string?> getEnv, Func<ModelRetry, Task>? onRetry = null)
    {
        var provider = settings.FindProvider(model.Provider);
        var kind = provider?.Kind?.ToLowerInvariant() ?? model.Provider switch
        {
            "anthropic" => "anthropic",
            "openai" or "ollama" => "openai",
            "sim" => "sim",
            _ => throw new ModelConfigException(
                ModelConfigException.UnknownProvider,
                $"The model provider '{model.Provider}' is not known (known providers: {string.Join(", ", ModelRef.BuiltinProviders)}). "
                + $"Use e.g. --model {ModelCatalog.DefaultModel} or --model sim:demo."),
        };

        IChatClient inner = kind switch
        {
            "anthropic" => CreateAnthropic(model, provider, settings, getEnv),
            "openai" => CreateOpenAI(model, provider, settings, getEnv),
            "sim" => new StartingChatClient(async ct =>
                Anthropic(model, "sim", (await _simulator.GetBaseUrlAsync(ct).ConfigureAwait(false)).ToString(), settings)),
            _ => throw new ModelConfigException(
                ModelConfigException.BadProvider,
                $"The provider '{model.Provider}' has kind '{provider?.Kind}'; the kind must be 'anthropic' or 'openai'."),
        };
        return new RetryingChatClient(inner, model.Provider, settings.Retry, onRetry, timeProvider);
    }

    private static IChatClient CreateAnthropic(
        ModelRef model, ProviderSettings? provider, ModelSettings settings, Func<string, string?> getEnv)
    {
        var keyEnv = provider?.ApiKeyEnv ?? "ANTHROPIC_API_KEY";
        var key = NonEmpty(provider?.ApiKey) ?? NonEmpty(getEnv(keyEnv)) ?? throw MissingKey(model, keyEnv);
        var baseUrl = NonEmpty(provider?.BaseUrl) ?? NonEmpty(getEnv("ANTHROPIC_BASE_URL")) ?? AnthropicDefaultBaseUrl;
        return Anthropic(model, key, baseUrl, settings);
    }

    private static IChatClient Anthropic(ModelRef model, string key, string baseUrl, ModelSettings settings) =>
        new AnthropicChatClient(baseUrl, key, model.Name, settings.MaxOutputTokens, Thinking.For(settings, model, ThinkingOf(model)));

    /// <summary>
    /// What the catalog says of the model; for a Simulator scenario (a <c>sim:</c> model, or a scenario file served by
    /// another Anthropic-protocol provider, as tests do), what the scenario's <c>thinking</c> declares.
    /// </summary>
    public static ThinkingSupport ThinkingOf(ModelRef model)
    {
        if (model.Provider != "sim" && !Simulator.Scenario.IsFileName(model.Name))
        {
            return ModelCatalog.ThinkingOf(model.Name);
        }

        try
        {
            return Simulator.Scenario.Find(model.Name).Thinking switch
            {
                "adaptive" => ThinkingSupport.Adaptive,
                "budget" => ThinkingSupport.Budget,
                _ => ThinkingSupport.None,
            };
        }
        catch (Exception e) when (e is KeyNotFoundException or FormatException or IOException or UnauthorizedAccessException)
        {
            return ThinkingSupport.None; // the Simulator answers the call with the reason
        }
    }

    private static IChatClient CreateOpenAI(
        ModelRef model, ProviderSettings? provider, ModelSettings settings, Func<string, string?> getEnv)
    {
        var baseUrl = NonEmpty(provider?.BaseUrl) ?? model.Provider switch
        {
            "openai" => NonEmpty(getEnv("OPENAI_BASE_URL")),
            "ollama" => OllamaDefaultBaseUrl,
            _ => throw new ModelConfigException(
                ModelConfigException.BadProvider,
                $"The provider '{model.Provider}' has no baseUrl. Set models.providers.{model.Provider}.baseUrl in the config, "
                + "e.g. \"http://localhost:8000/v1\"."),
        };
        var keyEnv = provider?.ApiKeyEnv ?? (model.Provider == "openai" ? "OPENAI_API_KEY" : null);
        var key = NonEmpty(provider?.ApiKey)
            ?? (keyEnv is null ? "none" : NonEmpty(getEnv(keyEnv)) ?? throw MissingKey(model, keyEnv));

        var options = new OpenAIClientOptions
        {
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = settings.Retry.IdleTimeout * 2,
        };
        if (baseUrl is not null)
        {
            options.Endpoint = new Uri(baseUrl);
        }

        return new ToolErrorTextChatClient(new OpenAIClient(new ApiKeyCredential(key), options).GetChatClient(model.Name).AsIChatClient());
    }

    private static ModelConfigException MissingKey(ModelRef model, string keyEnv) => new(
        ModelConfigException.MissingKey,
        $"No API key for {model}: {keyEnv} is not set in the daemon's environment. Set it (export {keyEnv}=...) and, if the daemon "
        + "was already running, `offload daemon stop` (it keeps the environment it started with; the next command starts it with yours), "
        + "or choose another model with "
        + "--model provider:model; to try Offload offline, use --model sim:demo.");

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    /// <summary>A client whose real client can only be made asynchronously (the Simulator starts on first use).</summary>
    private sealed class StartingChatClient(Func<CancellationToken, Task<IChatClient>> start) : IChatClient
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private IChatClient? _inner;

        public async Task<ChatResponse> GetResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            await (await InnerAsync(cancellationToken).ConfigureAwait(false))
                .GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages,
            ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var inner = await InnerAsync(cancellationToken).ConfigureAwait(false);
            await foreach (var update in inner.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
            {
                yield return update;
            }
        }

        public object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType.IsInstanceOfType(this) ? this : _inner?.GetService(serviceType, serviceKey);

        public void Dispose() => _inner?.Dispose();

        private async Task<IChatClient> InnerAsync(CancellationToken cancellationToken)
        {
            if (Volatile.Read(ref _inner) is { } ready)
            {
                return ready;
            }

            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return _inner ??= await start(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
