namespace Offload.Simulator;

/// <summary>How to start a <see cref="SimulatorServer"/>.</summary>
public sealed record SimulatorOptions
{
    /// <summary>The loopback TCP port; 0 picks a free one.</summary>
    public int Port { get; init; } = 0;

    /// <summary>When set, served for every model name.</summary>
    public Scenario? DefaultScenario { get; init; }

    /// <summary>Extra scenarios chosen by model name, looked up before the builtin ones.</summary>
    public IReadOnlyDictionary<string, Scenario>? Scenarios { get; init; }

    /// <summary>How many of the most recent requests keep their body in <see cref="SimulatorServer.Requests"/>.</summary>
    public int MaxRecordedBodies { get; init; } = 1000;

    /// <summary>The clock for turn delays, stalls and <see cref="RecordedRequest.At"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
