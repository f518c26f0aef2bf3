"""word2vec: corpus, batches and update, model, training through `fit`."""
