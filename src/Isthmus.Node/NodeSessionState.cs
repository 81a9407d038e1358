namespace Isthmus.Node;

/// <summary>The current enrolment: replaced as a whole when the agent re-enrols after losing its router.</summary>
public sealed record NodeSessionState(uint Vip, ulong SessionId, byte[] Key);
