// Placeholder until the overlay format lands (issue 4); see README.md.
export {};
