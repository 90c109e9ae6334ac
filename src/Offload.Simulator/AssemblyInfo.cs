namespace Offload.Simulator;
