"""Built-in layer kinds. Importing this package registers them."""
from . import (activation, bidirectional, dense, dropout, embedding, gru, input, lstm,  # noqa: F401
               masking, pooling, simple_rnn)
