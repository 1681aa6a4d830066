// Placeholder until the registry lands (issue 3); see README.md for the planned API.
export {};
