"""The vocabulary: attributes and their synonyms, canonical names, colours and their harmony, outfit slot rules."""
